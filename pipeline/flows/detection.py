"""The detection pipeline as a Prefect flow: the same DVC stages ``dvc repro`` runs, one task each.

    python -m pipeline.flows.detection [--set train_detector.epochs=10 ...] [--executor pools]
"""

from __future__ import annotations

from pipeline.flows.common import flow_cli, pipeline_flow

# The last stage of the detection DAG: the flow runs it and everything upstream of it.
FINAL_STAGES = ["report"]

detection = pipeline_flow("detection", FINAL_STAGES,
                          "Render → real → crop → refine → reinsert → train_detector → evaluate → report, via DVC.")

main = flow_cli(detection, "Run the detection DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
