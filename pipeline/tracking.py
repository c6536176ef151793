"""MLflow at the edges: one parent run per pipeline run, one child run per stage or refiner config.

The default store is local: ``sqlite:///mlflow.db`` plus MLflow's ``mlruns/`` artifact folder;
``MLFLOW_TRACKING_URI`` overrides it. The parent run is found by its ``pipeline_key`` tag (git revision
+ params hash), so every stage of one ``dvc repro`` lands under one parent; a Prefect flow passes its
parent explicitly through ``PIPELINE_PARENT_RUN_ID``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from pipeline.params import Params, as_flat_dict

if TYPE_CHECKING:
    import pandas as pd

PARENT_ENV = "PIPELINE_PARENT_RUN_ID"
METRICS_TAG = "metrics_md5"  # md5 of the metrics file a stage run wrote (DVC restores it with the stage)


def file_md5(path: Path | str) -> str:
    """A file's md5, read in 1 MiB blocks (render assets and plates can be large)."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def mlflow_key(key: object) -> str:
    """A metric or param name MLflow accepts (``[/\\w.\\- :]`` only): a set name's ``+`` becomes `` _ ``
    (``R+C_CP_S`` -> ``R _ C_CP_S``), any other character outside that set ``_``."""
    return re.sub(r"[^/\w.\- :]", "_", str(key).replace("+", " _ "))


def _mlflow():
    import mlflow

    # MLflow configures its logger on import; its INFO lines (DB migrations) would bury a stage's
    # one-line error, so quieten it afterwards.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def _experiment(mlflow, name: str) -> str:
    """The experiment's id, created if missing; two stages starting at once may both try to create it
    (concurrent stages, two workers): the one that loses the race reads the winner's."""
    from mlflow.exceptions import MlflowException

    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return mlflow.create_experiment(name)
    except MlflowException:
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _tags(params: Params, pipeline: str) -> dict[str, str]:
    tags = {"git_rev": git_revision(), "params_hash": params.digest(pipeline),
            "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "workspace")}
    if os.environ.get("PREFECT__FLOW_RUN_ID"):
        tags["prefect_flow_run_id"] = os.environ["PREFECT__FLOW_RUN_ID"]
    return tags


def parent_run(mlflow, experiment_id: str, pipeline: str, params: Params) -> str:
    """Find or create the parent run of this pipeline run."""
    if os.environ.get(PARENT_ENV):
        return os.environ[PARENT_ENV]
    tags = _tags(params, pipeline)
    key = f"{pipeline}:{tags['git_rev']}:{tags['params_hash']}:{tags['dvc_exp_name']}"
    found = mlflow.search_runs([experiment_id], filter_string=f"tags.pipeline_key = '{key}'",
                               max_results=1, output_format="list")
    if found:
        return found[0].info.run_id
    client = mlflow.MlflowClient()
    run = client.create_run(experiment_id, run_name=f"{pipeline}-{tags['params_hash']}",
                            tags={**tags, "pipeline_key": key, "pipeline": pipeline})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


class StageRun:
    """What a stage logs: metrics, images and files."""

    def __init__(self, mlflow, run_id: str) -> None:
        self._mlflow, self.run_id = mlflow, run_id

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in values.items()}, step=step)

    def tag(self, key: str, value: str) -> None:
        self._mlflow.set_tag(key, value)

    def image(self, name: str, array: np.ndarray) -> None:
        from PIL import Image

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            Image.fromarray(array).save(path)
            self._mlflow.log_artifact(str(path))

    def file(self, path: Path, folder: str | None = None) -> None:
        self._mlflow.log_artifact(str(path), artifact_path=folder)


@contextlib.contextmanager
def stage_run(pipeline: str, stage: str, params: Params, section: Any,
              extra_params: dict[str, Any] | None = None) -> Iterator[StageRun]:
    """Open a child run named ``stage`` under the pipeline's parent; logs params and wall time."""
    mlflow = _mlflow()
    exp = _experiment(mlflow, pipeline)
    parent = parent_run(mlflow, exp, pipeline, params)
    flat = as_flat_dict(section) if section is not None else {}
    flat.update(extra_params or {})
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=exp, run_name=stage, parent_run_id=parent, tags={
            **_tags(params, pipeline), "stage": stage, "pipeline": pipeline}) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})
        handle = StageRun(mlflow, run.info.run_id)
        yield handle
        handle.metrics({"wall_seconds": time.perf_counter() - start})


def summary_run(pipeline: str, name: str, params: Params, run_params: dict[str, Any], metrics: dict[str, float],
                tags: dict[str, str] | None = None) -> str:
    """A finished child run ``name`` of the pipeline's parent that only carries a summary (a refiner config's
    weights and results, for MLflow's compare view); returns its id. Logged through the client, so it
    does not disturb the stage's own active run."""
    mlflow = _mlflow()
    from mlflow.entities import Metric, Param, RunTag

    exp = _experiment(mlflow, pipeline)
    parent = parent_run(mlflow, exp, pipeline, params)
    client = mlflow.MlflowClient()
    all_tags = {**_tags(params, pipeline), "pipeline": pipeline, "stage": name, "mlflow.parentRunId": parent,
                **(tags or {})}
    run = client.create_run(exp, run_name=name, tags=all_tags)
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric(mlflow_key(k), float(v), now, 0) for k, v in metrics.items()],
                     params=[Param(mlflow_key(k), str(v)[:6000]) for k, v in run_params.items()],
                     tags=[RunTag("mlflow.runName", name)])
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@contextlib.contextmanager
def pipeline_run(pipeline: str, params: Params, run_name: str, tags: dict[str, str] | None = None) -> Iterator[str]:
    """The parent run of one orchestrated pipeline run (a Prefect flow run); yields its id.

    While open, ``PIPELINE_PARENT_RUN_ID`` points the stage processes at it, so each stage DVC runs
    becomes its child. Ends FINISHED, or FAILED when the body raises.
    """
    mlflow = _mlflow()
    exp = _experiment(mlflow, pipeline)
    client = mlflow.MlflowClient()
    run = client.create_run(exp, run_name=run_name,
                            tags={**_tags(params, pipeline), "pipeline": pipeline, **(tags or {})})
    run_id = run.info.run_id
    old = os.environ.get(PARENT_ENV)
    os.environ[PARENT_ENV] = run_id
    status = "FAILED"
    try:
        yield run_id
        status = "FINISHED"
    finally:
        if old is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = old
        client.set_terminated(run_id, status=status)


def log_to_run(run_id: str, metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None) -> None:
    """Add metrics or tags to a finished or running run (the flow's parent gets its summary this way)."""
    client = _mlflow().MlflowClient()
    for k, v in (metrics or {}).items():
        client.log_metric(run_id, k, float(v))
    for k, v in (tags or {}).items():
        client.set_tag(run_id, k, v)


def search_runs(pipeline: str, filter_string: str = "") -> "pd.DataFrame":
    """Runs of the pipeline's experiment as a pandas table (``mlflow.search_runs``); empty if none."""
    import pandas as pd

    mlflow = _mlflow()
    exp = mlflow.get_experiment_by_name(pipeline)
    if exp is None:
        return pd.DataFrame()
    return mlflow.search_runs([exp.experiment_id], filter_string=filter_string, order_by=["start_time DESC"])


def compare_url(pipeline: str, run_ids: list[str], ui: str = "http://127.0.0.1:5000") -> str:
    """The MLflow UI's compare view for these runs."""
    from urllib.parse import quote

    exp = _mlflow().get_experiment_by_name(pipeline)
    exp_ids = [exp.experiment_id] if exp is not None else []
    return (f"{ui.rstrip('/')}/#/compare-runs?runs={quote(json.dumps(run_ids))}"
            f"&experiments={quote(json.dumps(exp_ids))}")
