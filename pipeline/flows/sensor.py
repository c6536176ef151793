"""The sensor domain as a Prefect flow: sensor_prepare → sensor_train_gan@<variant> → sensor_classify.

    python -m pipeline.flows.sensor [--set sensor_train_gan.epochs=100 ...] [--executor pools]
"""

from __future__ import annotations

from pipeline.flows.common import flow_cli, pipeline_flow

FINAL_STAGES = ["sensor_classify"]

sensor = pipeline_flow("sensor", FINAL_STAGES,
                       "Windows from real accelerometer recordings, one GAN per variant, the classifier's verdict on each.")

main = flow_cli(sensor, "Run the sensor DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
