"""Every pipeline of the registry (``pipeline.domains``) as a Prefect flow: the same DVC stages ``dvc repro``
runs, one task each. The flow ``<name>`` runs the pipeline's final stages and everything upstream of them.

    python -m pipeline.flows detection [--set train_detector.epochs=10 ...] [--executor pools]

Deployment entrypoints are ``pipeline/flows/pipelines.py:<name>`` (one module attribute per pipeline).
"""

from __future__ import annotations

from typing import Any

from pipeline.domains import DOMAINS
from pipeline.flows.common import pipeline_flow

FLOWS: dict[str, Any] = {name: pipeline_flow(name, list(d.final_stages), d.summary) for name, d in DOMAINS.items()}

# a deployment's entrypoint names a module attribute: one per registered pipeline
globals().update(FLOWS)
