"""The sensor domain as a Prefect flow: sensor_prepare → sensor_train_gan@<variant> → sensor_classify.

    python -m pipeline.flows.sensor [--set sensor_train_gan.epochs=100 ...] [--executor pools]
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from pipeline.flows import dag
from pipeline.flows.common import Executor, flow_cli, orchestrate, run_plan

FINAL_STAGES = ["sensor_classify"]


@flow(name="sensor", log_prints=True)
def sensor(root: str = ".", overrides: dict[str, Any] | None = None, exp_name: str | None = None,
           executor: Executor = "local", record: bool = True, share: bool = False) -> dict[str, str]:
    """Windows from real accelerometer recordings, one GAN per variant, the classifier's verdict on each.

    Parameters as in the detection flow; ``sensor_train_gan`` stages go to the gpu pool with ``pools``.
    """
    return orchestrate("sensor", root, overrides, exp_name, record,
                       lambda r: run_plan(r, dag.plan(r, FINAL_STAGES), executor, share))


main = flow_cli(sensor, "Run the sensor DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
