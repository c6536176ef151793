"""Distributed render: one render stage (``render`` or ``real``) split into N shards that render at the same
time, on pool workers or as concurrent local tasks, merged into the stage's output and recorded in DVC.

    python -m pipeline.flows.render render --shards 8 --executor pools --shard-dir /nfs/shards/render
    python -m pipeline.flows.render real --shards 2                      # two concurrent local shards

Each shard task runs the stage's own ``dvc.yaml`` command with ``--shard K/N --shard-dir DIR``; the merge runs
it with ``--merge DIR`` (pipeline.detection.render.shards checks every shard and assembles the same bytes
one render writes); then ``dvc commit`` records the stage, with its run-cache entry, exactly as ``dvc repro``
would have, so a following ``dvc repro`` has nothing to do. A stage DVC sees up to date is skipped, and one
whose deps and params are in the run-cache is restored from it, as ``dvc repro`` does. Shards already in
DIR with the same spec hash are kept, so a rerun after a failure renders only the shards that are missing.

With ``executor="pools"`` each shard is a flow run of the deployment ``render-shard/<pool>``; its worker
runs in ``root`` as given (the checkout the workers share, as for the pipeline flows), and ``shard_dir``
must be a folder every worker and this flow can reach (default: ``<root>/.dvc/tmp/shards/<stage>``).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

import yaml
from prefect import flow, get_run_logger, task
from prefect.futures import wait
from prefect.tasks import exponential_backoff

from pipeline.errors import PipelineError
from pipeline.flows import dag
from pipeline.flows.common import flow_cli, orchestrate, retry_unless_user_error

STAGES = ("render", "real")  # the stages whose render distributes (stages/detection/<stage>.py, --shard/--merge)
MANIFEST = "shard.json"  # what marks a folder as a shard (pipeline.detection.render.shards.MANIFEST)


def stage_command(root: Path, stage: str) -> list[str]:
    """The stage's command from dvc.yaml (paths live there only), as argv."""
    if stage not in STAGES:
        raise PipelineError(f"render_distributed: stage {stage!r} does not shard (one of: {', '.join(STAGES)})")
    cmd = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {}).get(stage, {}).get("cmd")
    if not isinstance(cmd, str):
        raise PipelineError(f"{root / 'dvc.yaml'}: no stage {stage!r} with a cmd")
    return shlex.split(cmd)


def _run(root: Path, argv: list[str], what: str) -> str:
    """Run a stage command in ``root``: its last stdout line, or StageFailed with its one-line error."""
    res = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        tail = lines[-1].removeprefix("error: ") if lines else f"exit status {res.returncode}"
        raise dag.StageFailed(what, tail, user_error=res.returncode == 2)
    out = res.stdout.strip().splitlines()
    return out[-1] if out else ""


@task(name="render-shard", task_run_name="{stage} shard {shard}", retries=2,
      retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_jitter_factor=0.2, retry_condition_fn=retry_unless_user_error)
def render_shard(root: str, stage: str, shard: str, shard_dir: str) -> str:
    """Render shard ``K/N`` of ``stage`` into ``shard_dir``/K here (the stage's command with ``--shard``)."""
    line = _run(Path(root), [*stage_command(Path(root), stage), "--shard", shard, "--shard-dir", shard_dir],
                f"{stage} shard {shard}")
    get_run_logger().info("%s shard %s: %s", stage, shard, line)
    return line


def default_shard_dir(root: Path, stage: str) -> Path:
    """Where shards go when no folder is given: inside the checkout, ignored by git and DVC."""
    return root / ".dvc" / "tmp" / "shards" / stage


@flow(name="render-shard", flow_run_name="{stage}-shard-{shard}", log_prints=True)
def render_shard_run(root: str = ".", stage: str = "render", shard: str = "0/1", shard_dir: str | None = None) -> str:
    """One shard as a flow run: the unit a pool worker executes for ``render_distributed`` (deployments
    ``render-shard/cpu`` and ``render-shard/gpu``)."""
    root_path = dag.check_root(root)
    return render_shard(str(root_path), stage, shard, str(Path(shard_dir) if shard_dir else
                                                          default_shard_dir(root_path, stage)))


@task(name="render-shard-on-pool", task_run_name="{stage} shard {shard} on {pool}")
def pool_shard(root: str, stage: str, shard: str, shard_dir: str, pool: str) -> str:
    """Run one shard as a flow run of the deployment ``render-shard/<pool>`` and wait for it."""
    from prefect.deployments import run_deployment

    run = run_deployment(f"render-shard/{pool}", timeout=None, parameters={
        "root": root, "stage": stage, "shard": shard, "shard_dir": shard_dir})
    if not run.state or not run.state.is_completed():
        raise dag.StageFailed(f"{stage} shard {shard}", f"flow run {run.name} on pool {pool} ended "
                              f"{run.state and run.state.name}: {run.state and run.state.message}", user_error=False)
    return "ran"


@task(name="render-merge", task_run_name="merge {stage}")
def merge(root: str, stage: str, shard_dir: str) -> str:
    """Assemble the shards into the stage's output (the stage's command with ``--merge``: MLflow run, metrics)."""
    return _run(Path(root), [*stage_command(Path(root), stage), "--merge", shard_dir], f"{stage} merge")


@task(name="dvc-commit", task_run_name="dvc commit {stage}")
def commit(root: str, stage: str) -> None:
    """Record the stage as ``dvc repro`` does: its dvc.lock entry, outputs in the cache, a run-cache entry."""
    from dvc.repo import lock_repo

    with contextlib.chdir(root):
        repo = dag.open_repo(root)
        try:
            with lock_repo(repo):
                for st in repo.commit(stage, force=True):
                    repo.stage_cache.save(st)
        finally:
            repo.close()


def restorable(root: Path, stage: str) -> bool:
    """Whether DVC's run-cache holds outputs for the stage's current deps and params (``dvc repro`` would
    restore them instead of running the stage)."""
    from dvc.stage.cache import RunCacheNotFoundError

    with contextlib.chdir(root):
        repo = dag.open_repo(root)
        try:
            st = repo.stage.collect(stage)[0]
            st.save_deps()  # in memory: the hashes the run-cache is keyed by
            repo.stage_cache.restore(st, dry=True)
            return True
        except (RunCacheNotFoundError, FileNotFoundError):
            return False
        finally:
            repo.close()


def _clear(shard_dir: Path, keep: set[str]) -> None:
    """Remove the shard folders in ``shard_dir`` whose names are not in ``keep`` (another split's leftovers);
    folders that are not shards are left alone (the merge then names them)."""
    if shard_dir.is_dir():
        for d in shard_dir.iterdir():
            if d.is_dir() and d.name not in keep and (d / MANIFEST).is_file():
                shutil.rmtree(d)


def distribute(root: Path, stage: str, shards: int, shard_dir: Path, executor: str, pool: str,
               keep_shards: bool) -> dict[str, str]:
    """Render ``stage`` as ``shards`` concurrent shards, merge, commit: {stage: "ran" | "skipped"}."""
    logger = get_run_logger()
    if dag.up_to_date(root, [dag.PlannedStage(stage, stage, ())]):
        logger.info("%s is up to date: nothing to render", stage)
        return {stage: "skipped"}
    if restorable(root, stage):
        logger.info("%s: restored from DVC's run-cache, as dvc repro does", stage)
        dag.run_stage(root, stage)
        return {stage: "ran"}
    names = [f"{k}/{shards}" for k in range(shards)]
    _clear(shard_dir, {str(k) for k in range(shards)})
    submit = (lambda s: pool_shard.submit(str(root), stage, s, str(shard_dir), pool)) if executor == "pools" \
        else (lambda s: render_shard.submit(str(root), stage, s, str(shard_dir)))
    futures = [submit(s) for s in names]
    wait(futures)  # every shard finishes (or fails) before the first failure stops the flow: a rerun keeps them
    for f in futures:
        f.result()
    logger.info("%s: %s", stage, merge(str(root), stage, str(shard_dir)))
    commit(str(root), stage)
    if not keep_shards:
        _clear(shard_dir, set())
        with contextlib.suppress(OSError):
            shard_dir.rmdir()  # only if nothing else is left in it
    return {stage: "ran"}


@flow(name="render-distributed", log_prints=True)
def render_distributed(stage: str = "render", shards: int = 2, root: str = ".", shard_dir: str | None = None,
                       executor: Literal["local", "pools"] = "local", pool: str = "cpu",
                       overrides: dict[str, Any] | None = None, exp_name: str | None = None, record: bool = True,
                       keep_shards: bool = False) -> dict[str, str]:
    """Render ``stage`` (``render`` or ``real``) as ``shards`` shards at once, merge them into its output
    and record it in DVC; ``executor="pools"`` sends each shard to the deployment ``render-shard/<pool>``.

    ``overrides``, ``exp_name`` and ``record`` as in the pipeline flows (a DVC experiment); ``shard_dir``
    defaults to ``<root>/.dvc/tmp/shards/<stage>`` and is removed after the merge unless ``keep_shards``.
    """
    root_path = dag.check_root(root)
    stage_command(root_path, stage)  # an unknown stage stops here, with one line
    if shards < 1:
        raise PipelineError(f"shards: expected an int >= 1, got {shards}")
    folder = Path(shard_dir).resolve() if shard_dir else default_shard_dir(root_path, stage)
    return orchestrate("detection", str(root_path), overrides, exp_name, record,
                       lambda r: distribute(r, stage, shards, folder, executor, pool, keep_shards))


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return int(text)


def _extra(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("stage", choices=STAGES)
    ap.add_argument("--shards", type=_positive, default=2, help="how many shards render at once (default 2)")
    ap.add_argument("--shard-dir", default=None, help="a folder every worker reaches (default .dvc/tmp/shards/STAGE)")
    ap.add_argument("--pool", default="cpu", help="with --executor pools: the work pool (cpu or gpu)")
    ap.add_argument("--keep-shards", action="store_true", help="keep the shard folders after the merge")


main = flow_cli(render_distributed, "Render one stage as shards at the same time, merge, record in DVC.", _extra,
                prog="python -m pipeline.flows.render")

if __name__ == "__main__":
    main()
