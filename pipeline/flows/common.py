"""Prefect building blocks shared by every pipeline's flows: one task per DVC stage, GPU routing, the run frame.

A flow run here is: validate and apply the params overrides (``dvc exp run --set-param`` semantics), open
the MLflow parent run, run the planned DVC stages one task each (DVC skips what is unchanged, so a flow
and ``dvc repro`` reuse each other's results), record the workspace as a DVC experiment, and put the
workspace back when overrides were applied. Stages run one after another because DVC holds one lock per
workspace; GPU stages can be sent to the ``gpu`` work pool instead of running in the flow's process.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.settings import (
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    temporary_settings,
)
from prefect.tasks import exponential_backoff

from pipeline.errors import PipelineError, cli
from pipeline.flows import dag, slots
from pipeline.params import PARAMS_FILE, load_params
from pipeline.tracking import log_to_run, pipeline_run

Executor = Literal["local", "pools"]
GPU_DEPLOYMENT = "run-stages/gpu"


def retry_unless_user_error(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry unless the stage stopped on the user's input (exit 2, one-line error): that fails again."""
    try:
        state.result()
    except dag.StageFailed as exc:
        return not exc.user_error
    except Exception:  # noqa: BLE001 - anything else (killed worker, CUDA error, I/O) may be transient
        return True
    return False


@task(name="dvc-stage", task_run_name="{address}", retries=2,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=0.2,
      retry_condition_fn=retry_unless_user_error)
def dvc_stage(root: str, address: str, pull: bool = False, push: bool = False, up_to_date: bool = False) -> str:
    """Reproduce one DVC stage if it changed: "ran" or "skipped".

    ``up_to_date``: the flow checked before running anything that DVC would skip this stage
    (``dag.up_to_date``), so it is reported skipped without opening the repo again.
    """
    start = time.perf_counter()
    ran = False if up_to_date else dag.run_stage(root, address, pull=pull)
    if push:
        dag.push_stage(root, address)
    status = "ran" if ran else "skipped"
    get_run_logger().info("%s %s%s in %.1f s", address, status, " (up to date)" if up_to_date else "",
                          time.perf_counter() - start)
    return status


@task(name="gpu-pool-stage", task_run_name="{address} on {deployment}")
def pool_stage(root: str, address: str, deployment: str = GPU_DEPLOYMENT, share: bool = False) -> str:
    """Run one stage as a flow run of ``deployment`` (a worker of that pool picks it up) and wait for it: "ran".

    The pool's concurrency limit (one run per GPU) queues it when the GPUs are busy. Only stages DVC
    sees changed here are sent (``run_plan`` checks first), and DVC runs a changed stage or restores it
    from the run-cache, which both count as "ran".
    """
    from prefect.deployments import run_deployment

    run = run_deployment(deployment, timeout=None, parameters={
        "root": root, "stages": [address], "pull": share, "push": share,
        "parent_run_id": os.environ.get("PIPELINE_PARENT_RUN_ID"), "exp_name": os.environ.get("DVC_EXP_NAME")})
    if not run.state or not run.state.is_completed():
        raise dag.StageFailed(address, f"{deployment} flow run {run.name} ended {run.state and run.state.name}: "
                                       f"{run.state and run.state.message}", user_error=False)
    return "ran"


def _run_here(root: Path, s: dag.PlannedStage, executor: Executor, share: bool, fresh: set[str]) -> str:
    """One stage in the orchestrating workspace, or on the gpu pool in its checkout, waiting for it."""
    if executor == "pools" and s.gpu and s.address not in fresh and not dag.up_to_date(root, [s]):
        status = pool_stage(str(root), s.address, share=share)
        if share:  # the worker pushed outputs + run-cache entry: restore them here, updating dvc.lock
            dvc_stage(str(root), s.address, pull=True)
        return status
    if executor == "pools" and s.gpu:  # up to date here: nothing to send to the pool
        return dvc_stage(str(root), s.address, push=share, up_to_date=True)
    return dvc_stage(str(root), s.address, pull=share, push=share, up_to_date=s.address in fresh)


def run_plan(root: Path, stages: list[dag.PlannedStage], executor: Executor = "local",
             share: bool = False, jobs: int = 1, pool_jobs: int | None = None) -> dict[str, str]:
    """Run the stages, each a task; GPU stages go to the gpu pool when ``executor`` is "pools".

    Which stages DVC would skip is decided first, in one repo (``dag.up_to_date``): their tasks report
    "skipped" without reproducing, and a GPU stage is only sent to the pool if DVC sees it changed when
    its turn comes, so the counts are "ran"/"skipped" for pool stages too. With ``share`` a skipped stage
    is still pushed, so workers elsewhere can restore it.

    ``jobs`` 1 (and ``pool_jobs`` 1) runs the stages one after another in plan order. More runs every
    stage whose upstream stages are done, up to ``jobs`` at once here and ``pool_jobs`` (default ``jobs``)
    at once on the gpu pool, each in a workspace of its own (``run_concurrently``).
    """
    pool_jobs = jobs if pool_jobs is None else pool_jobs
    if jobs < 1 or pool_jobs < 1:
        raise PipelineError(f"jobs: expected an int >= 1, got {min(jobs, pool_jobs)}")
    if jobs > 1 or executor == "pools" and pool_jobs > 1:
        # a stage run in a slot logs to this workspace's MLflow store, as it does when it runs here
        mlflow_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"
        with dag.stage_env(MLFLOW_TRACKING_URI=mlflow_uri):
            return run_concurrently(Path(root), stages, executor, share, jobs, pool_jobs)
    fresh = dag.up_to_date(root, stages)
    return {s.address: _run_here(root, s, executor, share, fresh) for s in stages}


@task(name="dvc-stage-in-slot", task_run_name="{address} in slot {slot}", retries=2,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=0.2,
      retry_condition_fn=retry_unless_user_error)
def slot_stage(slot_root: str, slot: int, address: str, upstream: list[str], locks: dict[str, str | None],
               pull: bool = False, deployment: str | None = None) -> str:
    """Run one stage in a slot (``pipeline.flows.slots``): with ``dvc repro --single-item`` here, or, with
    ``deployment``, as a flow run of that deployment, which a pool worker on this machine runs in the slot."""
    start = time.perf_counter()
    if deployment:
        slots.sync(Path(slot_root), locks)
        slots.checkout(Path(slot_root), address, upstream)
        pool_stage.fn(slot_root, address, deployment)
    else:
        slots.run(Path(slot_root), address, upstream, locks, pull=pull)
    get_run_logger().info("%s ran in slot %d in %.1f s", address, slot, time.perf_counter() - start)
    return "ran"


def run_concurrently(root: Path, stages: list[dag.PlannedStage], executor: Executor, share: bool,
                     jobs: int, pool_jobs: int) -> dict[str, str]:
    """Submit every stage whose upstream stages are done, up to ``jobs`` local and ``pool_jobs`` gpu-pool
    stages at once; each runs in a slot, a git worktree of this workspace (``pipeline.flows.slots``).

    This thread alone touches the orchestrating workspace: it decides what is up to date, and restores
    each stage a slot (or a worker elsewhere, with ``share``) ran from the run-cache, as ``dvc repro``
    would, so ``dvc.lock`` ends as after a sequential run (its new entries in plan order). A stage the
    run-cache cannot bring back (``dag.restorable``) runs here, while the slots carry on. After a failure
    nothing more starts; the stages running finish, then the first error is raised.
    """
    from prefect.futures import as_completed, wait

    fresh = dag.up_to_date(root, stages)
    movable, cache_dir = dag.restorable(root, stages)
    snap = slots.snapshot(root, cache_dir)
    locks = slots.lock_files([s.address for s in stages])
    before = {lock: dag.lock_keys(root / lock) for lock in locks}
    limit = {"local": jobs, "pool": pool_jobs}
    free = list(range(jobs + pool_jobs))
    pending, done, checked = list(stages), {}, set(fresh)
    running: dict[Any, tuple[dag.PlannedStage, int | None, Path | None]] = {}
    failure: BaseException | None = None
    try:
        while failure is None and (pending or running):
            started = len(pending)
            ready = [s for s in pending if set(s.upstream) <= done.keys()]
            # with their upstream stages done, ask DVC once which of the newly ready stages it would skip
            fresh |= dag.up_to_date(root, [s for s in ready if s.address not in checked])
            checked |= {s.address for s in ready}
            for s in ready:
                kind = _kind(executor, s)
                if s.address in fresh or s.address not in movable:
                    done[s.address] = _run_here(root, s, executor, share, fresh)
                elif sum(_kind(executor, r) == kind for r, _, _ in running.values()) < limit[kind]:
                    running.update([_submit(root, snap, s, kind, share, free, locks)])
                else:
                    continue
                pending.remove(s)
            if len(pending) < started:
                continue  # stages done here may have made others ready
            if not running:
                raise PipelineError(f"no stage can run; left: {[s.address for s in pending]}")
            future = next(as_completed(list(running)))
            s, slot, slot_root = running.pop(future)
            if slot is not None:
                free = sorted([*free, slot])
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - raised once the running stages are done
                failure = exc
                continue
            # bring the stage's outputs and dvc.lock entry back here: the slot's entry, then DVC checks its
            # outputs out of the shared cache (from the run-cache when this lock had no entry for it)
            if slot_root is not None:
                slots.adopt(slot_root, root, s.address)
            dvc_stage.with_options(task_run_name=f"{s.address} restored")(str(root), s.address, pull=share,
                                                                           push=share)
            done[s.address] = "ran"
    finally:
        if running:
            wait(list(running))
    if failure is not None:
        raise failure
    for lock in locks:
        dag.order_lock(root / lock, before[lock], [s.address.rpartition(":")[2] for s in stages])
    return {s.address: done[s.address] for s in stages}


def _kind(executor: Executor, s: dag.PlannedStage) -> str:
    return "pool" if executor == "pools" and s.gpu else "local"


def _submit(root: Path, snap: slots.Snapshot, s: dag.PlannedStage, kind: str, share: bool, free: list[int],
            locks: list[Path]) -> tuple[Any, tuple[dag.PlannedStage, int | None, Path | None]]:
    """Start one stage: in the lowest free slot, or (a gpu-pool stage with ``share``) on a worker's checkout."""
    if kind == "pool" and share:  # the worker restores upstream outputs from the remote, pushes its own
        return pool_stage.submit(str(root), s.address, share=True), (s, None, None)
    slot = free.pop(0)
    slot_root = slots.prepare(snap, slot)
    texts = {str(path): (root / path).read_text() if (root / path).is_file() else None
             for path in [*locks, *slots.gitignores(root)]}
    return slot_stage.submit(str(slot_root), slot, s.address, list(s.upstream), texts, pull=share,
                             deployment=GPU_DEPLOYMENT if kind == "pool" else None), (s, slot, slot_root)


def orchestrate(pipeline: str, root: str, overrides: dict[str, Any] | None, exp_name: str | None, record: bool,
                body: Callable[[Path], dict[str, str]]) -> dict[str, str]:
    """The frame of a flow run around ``body(root)``: overrides, MLflow parent, DVC experiment, summary."""
    root_path = dag.check_root(root)
    name = exp_name or f"{flow_run.flow_name or pipeline}-{flow_run.name or 'local'}".replace("_", "-")
    logger = get_run_logger()
    with dag.workspace_snapshot(root_path) if overrides else contextlib.nullcontext():
        applied = dag.apply_overrides(root_path, overrides)
        if applied:
            logger.info("params overrides: %s", " ".join(applied))
        params = load_params(root_path / PARAMS_FILE)
        tags = {"prefect_flow_run_id": str(flow_run.id or ""), "dvc_exp_name": name,
                "overrides": " ".join(applied)[:5000]}
        start = time.perf_counter()
        with dag.stage_env(DVC_EXP_NAME=name, PREFECT__FLOW_RUN_ID=flow_run.id), \
                pipeline_run(pipeline, params, name, tags) as parent:
            done = body(root_path)
            log_to_run(parent, {"stages_ran": sum(v == "ran" for v in done.values()),
                                "stages_skipped": sum(v == "skipped" for v in done.values()),
                                "flow_seconds": time.perf_counter() - start})
        # a run that changed nothing and overrode nothing is not a new experiment (and `exp save` commits
        # every stage again, the slowest part of a no-op run)
        ran = any(v == "ran" for v in done.values())
        ref = dag.save_experiment(root_path, name, list(done)) if record and (ran or overrides) else None
        if ref:
            log_to_run(parent, tags={"dvc_exp_ref": ref})
    rows = "\n".join(f"| `{a}` | {s} |" for a, s in done.items())
    exp = ref or ("not recorded" if not record or ran or overrides else "none (nothing ran, no overrides)")
    create_markdown_artifact(f"### {pipeline}: {name}\n\n| stage | status |\n|---|---|\n{rows}\n\n"
                             f"DVC experiment: `{exp}`; MLflow parent run `{parent}`",
                             key=f"{pipeline}-stages".replace("_", "-"), description="stages of this run")
    return done


FLOW_PARAMETERS = """``overrides`` are dotted params keys (``{"refine.epochs": 4}``), applied like ``dvc exp run
--set-param`` and recorded, with the results, as the DVC experiment ``exp_name``. ``executor="pools"`` sends
GPU stages to the ``gpu`` work pool; ``share`` pulls inputs from and pushes outputs to the default DVC
remote (workers on other machines). ``jobs`` > 1 runs up to that many independent stages at once here, each
in a git worktree of the project sharing its DVC cache, and ``pool_jobs`` (default ``jobs``) caps the GPU
stages in flight on the gpu pool."""


def pipeline_flow(name: str, final_stages: list[str], summary: str) -> Any:
    """The Prefect flow ``name``: runs ``final_stages`` and everything upstream of them, one DVC stage a task."""

    def run(root: str = ".", overrides: dict[str, Any] | None = None, exp_name: str | None = None,
            executor: Executor = "local", record: bool = True, share: bool = False, jobs: int = 1,
            pool_jobs: int | None = None) -> dict[str, str]:
        return orchestrate(name, root, overrides, exp_name, record,
                           lambda r: run_plan(r, dag.plan(r, final_stages), executor, share, jobs, pool_jobs))

    run.__name__ = run.__qualname__ = name
    run.__doc__ = f"{summary}\n\n{FLOW_PARAMETERS}"
    return flow(run, name=name, log_prints=True)


@flow(name="run-stages", log_prints=True)
def run_stages(root: str = ".", stages: list[str] | None = None, pull: bool = False, push: bool = False,
               parent_run_id: str | None = None, exp_name: str | None = None) -> dict[str, str]:
    """Run the given DVC stages here (the unit a gpu/cpu pool worker executes for a pipeline flow).

    With ``pull`` (a worker on another machine with its own checkout) the stages' upstream stages are
    restored first from the DVC remote's run-cache, so their outputs are there as inputs.
    """
    root_path = dag.check_root(root)
    todo = [s.address for s in dag.plan(root_path, stages)] if pull and stages else list(stages or [])
    with dag.stage_env(PIPELINE_PARENT_RUN_ID=parent_run_id, DVC_EXP_NAME=exp_name,
                       PREFECT__FLOW_RUN_ID=flow_run.id):
        return {a: dvc_stage(str(root_path), a, pull=pull, push=push) for a in todo}


def parse_set(values: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs (values read as YAML: numbers, lists, strings)."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PipelineError(f"--set {item}: expected key=value")
        try:
            out[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise PipelineError(f"--set {item}: value is not valid YAML") from None
    return out


def flow_cli(run: Callable[..., Any], description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None,
             prog: str | None = None):
    """A ``main()`` that runs the flow once, here, and exits 0/1/2 (``python -m pipeline.flows <name>``)."""

    @cli
    def main() -> None:
        ap = argparse.ArgumentParser(prog=prog, description=description)
        ap.add_argument("--root", default=".")
        ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="params override, as `dvc exp run --set-param` (repeatable)")
        ap.add_argument("--exp-name", default=None)
        ap.add_argument("--executor", choices=["local", "pools"], default="local")
        ap.add_argument("--no-record", action="store_true", help="do not record a DVC experiment")
        ap.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="independent stages run at once on this machine, each in a git worktree (default 1)")
        ap.add_argument("--pool-jobs", type=int, default=None, metavar="N",
                        help="GPU stages in flight at once on the gpu pool with --executor pools (default: --jobs)")
        if extra:
            extra(ap)
        args = vars(ap.parse_args())
        kwargs = {k: v for k, v in args.items() if k not in ("set", "no_record", "exp_name")}
        overrides = parse_set(args["set"]) or None
        for opt in ("jobs", "pool_jobs"):
            if args[opt] is not None and args[opt] < 1:
                raise PipelineError(f"--{opt.replace('_', '-')}: expected an int >= 1, got {args[opt]}")
        dag.check_overrides(dag.check_root(args["root"]), overrides)  # bad params: one line, no flow run
        # without PREFECT_API_URL Prefect starts a temporary server, which needs more than its default
        # 20 s on a busy 2-core machine; its telemetry writer races the first migration on sqlite
        with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 180,
                                 PREFECT_SERVER_ANALYTICS_ENABLED: False}):
            state = run(overrides=overrides, exp_name=args["exp_name"], record=not args["no_record"],
                        return_state=True, **kwargs)
        if not state.is_completed():
            exc = _exception(state)
            if isinstance(exc, (PipelineError, dag.StageFailed)):
                raise PipelineError(str(exc))
            print(f"error: flow run {state.name}: {state.message}", file=sys.stderr)
            raise SystemExit(1)

    return main


def _user_error(exc: BaseException | None) -> bool:
    return isinstance(exc, PipelineError) or isinstance(exc, dag.StageFailed) and exc.user_error


class _UserErrorsOneLine(logging.Filter):
    """A stage's one-line error (or a bad override) is logged as that line, without a traceback.

    Prefect's engines log a failed run's exception with its traceback: the flow engine's "Encountered
    exception during execution", and, in a flow run a worker started, ``run_flow``'s "Engine execution
    exited with unexpected exception" (and the task engine's "Task run failed ..." for a task without
    retries). For the user's own mistake the traceback is noise: the first becomes the line itself, the
    repeat is dropped. Installed on the engines' loggers (not on handlers), so it applies however
    logging was set up: CLI, tests, or ``python -m prefect.engine`` under a worker.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not _user_error(exc):
            return True
        if str(record.msg).startswith(("Engine execution", "Execution of flow run", "Execution exited")):
            return False
        record.msg, record.args, record.exc_info, record.exc_text = " ".join(str(exc).split()), (), None, None
        return True


def _install_user_error_filter() -> None:
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _UserErrorsOneLine) for f in logger.filters):
            logger.addFilter(_UserErrorsOneLine())


# at import: every process that runs these flows imports this module first (a worker loads the entrypoint)
_install_user_error_filter()


def _exception(state: Any) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001
        return exc
    return None
