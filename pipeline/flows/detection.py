"""The detection pipeline as a Prefect flow: the same DVC stages ``dvc repro`` runs, one task each.

    python -m pipeline.flows.detection [--set train_detector.epochs=10 ...] [--executor pools]
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from pipeline.flows import dag
from pipeline.flows.common import Executor, flow_cli, orchestrate, run_plan

# The last stage of the detection DAG: the flow runs it and everything upstream of it.
FINAL_STAGES = ["report"]


@flow(name="detection", log_prints=True)
def detection(root: str = ".", overrides: dict[str, Any] | None = None, exp_name: str | None = None,
              executor: Executor = "local", record: bool = True, share: bool = False) -> dict[str, str]:
    """Render → real → crop → refine → reinsert → train_detector → evaluate → report, via DVC.

    ``overrides`` are dotted params keys (``{"refine.epochs": 4}``), applied like ``dvc exp run
    --set-param`` and recorded, with the results, as the DVC experiment ``exp_name``. ``executor="pools"``
    sends GPU stages to the ``gpu`` work pool; ``share`` pulls inputs from and pushes outputs to the
    default DVC remote (workers on other machines).
    """
    return orchestrate("detection", root, overrides, exp_name, record,
                       lambda r: run_plan(r, dag.plan(r, FINAL_STAGES), executor, share))


main = flow_cli(detection, "Run the detection DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
