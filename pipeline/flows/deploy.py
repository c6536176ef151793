"""Work pools and deployments: nightly detection pipeline, weekly refiner sweep, stage runners per pool.

    python -m pipeline.flows.deploy [--gpus 1] [--root .]

Needs a Prefect server (``PREFECT_API_URL``; see README). Creates, or updates, the process work pools
``cpu`` and ``gpu`` (the gpu pool's concurrency limit is the number of GPUs: one run per GPU) and the
deployments in DEPLOYMENTS, each pulling its code from ``--root`` (the project checkout the workers share).
Start workers with ``prefect worker start --pool gpu --limit 1`` (one per GPU) and ``--pool cpu``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.domains import DOMAINS
from pipeline.errors import PipelineError, cli
from pipeline.flows import dag
from pipeline.params import PARAMS_FILE

# the weekly refiner sweep (UTC), apart from the pipelines' nightly runs (pipeline.domains)
SWEEP_CRON = "0 3 * * 6"


@dataclass(frozen=True)
class Spec:
    """One deployment: ``<flow name>/<name>`` from ``entrypoint`` on ``pool``, optionally on a cron schedule (UTC)."""

    name: str
    entrypoint: str
    pool: str
    cron: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def deployments(root: Path) -> list[Spec]:
    """What ``deploy`` creates; the weekly sweep compares the configs ``refine.run`` lists at deploy time."""
    params = yaml.safe_load((root / PARAMS_FILE).read_text()) or {}
    configs = list(params.get("refine", {}).get("run", []))
    return [
        *(Spec("nightly", f"pipeline/flows/pipelines.py:{name}", "cpu", d.cron,
               {"root": str(root), "executor": "pools"}, f"The {name} pipeline on schedule {d.cron!r} (UTC).")
          for name, d in DOMAINS.items()),
        Spec("weekly", "pipeline/flows/sweep.py:refiner_sweep", "cpu", SWEEP_CRON,
             {"root": str(root), "executor": "pools", "configs": configs},
             "Refiner sweep every Saturday at 03:00 UTC."),
        Spec("gpu", "pipeline/flows/common.py:run_stages", "gpu", None, {"root": str(root)},
             "Runs GPU-heavy stages (refine, train_detector, train_gan) for the pipeline flows."),
        Spec("cpu", "pipeline/flows/common.py:run_stages", "cpu", None, {"root": str(root)},
             "Runs stages on the cpu pool."),
        Spec("cpu", "pipeline/flows/render.py:render_shard_run", "cpu", None, {"root": str(root)},
             "Renders one shard of a distributed render (render_distributed with executor pools)."),
        Spec("gpu", "pipeline/flows/render.py:render_shard_run", "gpu", None, {"root": str(root)},
             "Renders one shard of a distributed render on a GPU worker."),
    ]


def ensure_pools(gpus: int = 1) -> None:
    """Create the process pools ``cpu`` and ``gpu``, or set the gpu pool's limit if they exist."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        for pool, limit in (("cpu", None), ("gpu", gpus)):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template,
                                                       concurrency_limit=limit))
            except ObjectAlreadyExists:
                client.update_work_pool(pool, WorkPoolUpdate(concurrency_limit=limit))


def deploy(root: Path, specs: list[Spec]) -> list[str]:
    """Create or update the deployments; returns their ``flow/deployment`` names."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    names = []
    for spec in specs:
        loaded = load_flow_from_entrypoint(str(root / spec.entrypoint))
        flow = loaded.from_source(source=str(root), entrypoint=spec.entrypoint)
        # the hours in DEPLOYMENTS are UTC: say so, or the server stores timezone null (`cron=` sets none)
        schedules = [Cron(spec.cron, timezone="UTC")] if spec.cron else None
        flow.deploy(spec.name, work_pool_name=spec.pool, schedules=schedules, parameters=spec.parameters,
                    description=spec.description, tags=[spec.pool], print_next_steps=False, build=False,
                    push=False)
        names.append(f"{loaded.name}/{spec.name}")
    return names


@cli
def main() -> None:
    ap = argparse.ArgumentParser(description="Create the work pools and deployments on the Prefect server.")
    ap.add_argument("--root", type=Path, default=Path("."), help="project checkout the workers run in")
    ap.add_argument("--gpus", type=int, default=1, help="gpu pool concurrency limit (one run per GPU)")
    args = ap.parse_args()
    if args.gpus < 1:
        raise PipelineError(f"--gpus: expected an int >= 1, got {args.gpus}")
    root = dag.check_root(args.root)
    ensure_pools(args.gpus)
    for name in deploy(root, deployments(root)):
        print(f"deployed {name}")


if __name__ == "__main__":
    main()
