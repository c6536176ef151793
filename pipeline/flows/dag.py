"""The DVC side of the flows: which stages a pipeline has, running one, params overrides, experiments.

Everything here goes through DVC's Python API (``dvc.repo.Repo``), so a stage run from a Prefect task
reads and writes the same cache, run-cache and ``dvc.lock`` as ``dvc repro``: whatever one of them ran,
the other skips. Prefect is imported by the modules that define flows, not here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from pipeline.domains import gpu_stages
from pipeline.errors import ERROR_FILE_ENV, PipelineError
from pipeline.params import PARAMS_FILE, merge, parse_params
from pipeline.profile import set_param_values

# Stages that train networks: with ``executor="pools"`` they go to the `gpu` work pool.
GPU_STAGES = gpu_stages()


@dataclass(frozen=True)
class PlannedStage:
    """One DVC stage of a plan: its address (``refine@C_CP_S``), its base name and its upstream stages."""

    address: str
    name: str
    upstream: tuple[str, ...]

    @property
    def gpu(self) -> bool:
        return self.name in GPU_STAGES


class StageFailed(Exception):
    """A stage failed. ``user_error``: it stopped with a one-line PipelineError (exit 2), so a retry won't help."""

    def __init__(self, address: str, message: str, user_error: bool) -> None:
        super().__init__(f"{address}: {message}")
        self.address, self.user_error = address, user_error


def open_repo(root: Path | str):
    from dvc.repo import Repo

    # wait for the repo lock instead of failing when a `dvc` command holds it
    return Repo(str(root), _wait_for_lock=True)


@contextlib.contextmanager
def _in_dir(root: Path | str) -> Iterator[None]:
    """Stage commands and params paths are relative to the repo root."""
    old = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(old)


def plan(root: Path | str, targets: list[str] | None = None) -> list[PlannedStage]:
    """The stages ``dvc repro <targets>`` would consider, in an order DVC accepts (dvc.yaml order where free).

    ``targets`` are stage names or addresses; None means every stage of the repo.
    """
    import networkx as nx

    with _in_dir(root):
        repo = open_repo(root)
        try:
            graph = repo.index.graph  # edges point from a stage to the stages it depends on
            stages = list(graph.nodes)
            if targets:
                wanted = {s for t in targets for s in repo.stage.collect(t)}
                keep = set(wanted)
                for s in wanted:
                    keep |= nx.descendants(graph, s)
                stages = [s for s in stages if s in keep]
            sub = graph.subgraph(stages)
            index = {s: i for i, s in enumerate(repo.index.stages)}
            order = list(nx.lexicographical_topological_sort(sub.reverse(copy=True), key=lambda s: index.get(s, 0)))
            return [PlannedStage(s.addressing, s.addressing.split("@")[0],
                                 tuple(sorted(u.addressing for u in sub.successors(s)))) for s in order]
        finally:
            repo.close()


def run_stage(root: Path | str, address: str, pull: bool = False) -> bool:
    """Reproduce one stage (not its upstream) if it changed; True if DVC ran it or restored it from the run-cache.

    An unchanged stage is skipped and a stage whose (deps, params, cmd) DVC has seen before is restored
    from the run-cache, exactly as in ``dvc repro``. ``pull`` fetches missing inputs from the default
    DVC remote first (for workers on other machines). Raises StageFailed carrying the stage's own
    one-line error when it printed one.
    """
    from dvc.exceptions import DvcException

    with tempfile.TemporaryDirectory() as tmp, _in_dir(root), _env(**{ERROR_FILE_ENV: str(Path(tmp) / "error")}):
        repo = open_repo(root)
        try:
            ran = repo.reproduce(address, single_item=True, pull=pull)
        except DvcException as exc:
            err = Path(tmp) / "error"
            if err.is_file():
                raise StageFailed(address, err.read_text().strip(), user_error=True) from None
            cause = exc.__cause__ or exc
            raise StageFailed(address, " ".join(str(cause).split()), user_error=False) from exc
        finally:
            repo.close()
    return bool(ran)


def up_to_date(root: Path | str, stages: list[PlannedStage]) -> set[str]:
    """The stages of ``stages`` (a plan, in order) that running them in order would skip; one Repo for all.

    A stage counts when DVC sees it unchanged now (deps, params, cmd and outs, the check
    ``run_stage`` makes, with DVC's hash cache) and so does every upstream stage of it in ``stages``: if
    an upstream stage runs first, this one may change, and ``run_stage`` decides then. Upstream stages
    outside ``stages`` have run already. On any DVC error the answer is "none", and ``run_stage`` reports.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import lock_repo

    if not stages:
        return set()
    with _in_dir(root):
        repo = open_repo(root)
        try:
            with lock_repo(repo):
                by_address = {s.addressing: s for s in repo.index.stages}
                planned = {s.address for s in stages}
                fresh: set[str] = set()
                for s in stages:
                    stage = by_address.get(s.address)
                    if stage is not None and planned.intersection(s.upstream) <= fresh and not stage.changed():
                        fresh.add(s.address)
                return fresh
        except DvcException:
            return set()
        finally:
            repo.close()


def restorable(root: Path | str, stages: list[PlannedStage]) -> tuple[set[str], Path]:
    """The stages another workspace can run for this one, and this workspace's DVC cache folder.

    A stage run elsewhere comes back through DVC's run-cache, so it qualifies when DVC saves a run-cache
    entry for it (what ``dvc.stage.cache`` requires): a command, deps and outputs, all local, no ``persist``
    output, not ``always_changed`` or frozen, and no uncached output other than metrics and plots. The rest
    (e.g. a ``.dvc`` data source) run in the orchestrating workspace itself.

    So does a stage whose deps, here, hold files another workspace would not have (``leftovers``): in a
    refiner sweep, ``data/reinserted`` still holds an earlier config's folder, which no stage of the
    plan makes and git does not track. Elsewhere the dep would hash differently, and DVC would run the
    stage a second time here instead of restoring it.
    """
    with _in_dir(root):
        repo = open_repo(root)
        try:
            by_address = {s.addressing: s for s in repo.index.stages}
            known = _git_files(Path(root))
            ok = set()
            for planned in stages:
                st = by_address.get(planned.address)
                if st is None or not (st.cmd and st.deps and st.outs) or st.always_changed or st.frozen:
                    continue
                if all(d.protocol == "local" and d.def_path for d in st.deps) and all(
                        o.protocol == "local" and o.def_path and o.is_in_repo and not o.persist
                        and (o.use_cache or o.is_metric or o.is_plot) for o in st.outs):
                    made = [Path(o.fs_path) for u in planned.upstream if u in by_address
                            for o in by_address[u].outs]
                    walk = lambda path: repo.dvcignore.walk(repo.fs, path)  # noqa: E731 - what DVC hashes
                    if not any(leftovers(Path(root), Path(d.fs_path), made, known, walk) for d in st.deps):
                        ok.add(planned.address)
            return ok, Path(repo.cache.local_cache_dir).resolve()
        finally:
            repo.close()


def _git_files(root: Path) -> set[Path] | None:
    """Every file a slot's snapshot of ``root`` holds (``slots.git_files``), resolved; None outside git."""
    from pipeline.flows.slots import git_files

    files = git_files(root)
    return None if files is None else {(root / f).resolve() for f in files}


def leftovers(root: Path, dep: Path, made: list[Path], known: set[Path] | None,
              walk: Callable[[str], Iterator[tuple[str, list[str], list[str]]]] = os.walk) -> list[Path]:
    """Files under ``dep`` in this workspace that a fresh workspace at the same commit, given the outputs
    ``made`` by the stage's upstream stages, would lack: neither under one of ``made`` nor known to git.
    ``walk`` lists a folder as ``os.walk`` does (top-down); the flows pass DVC's, which skips what
    ``.dvcignore`` names, as DVC does when it hashes the dep."""
    if known is None or not dep.exists():
        return []
    made = [m.resolve() for m in made]
    dep = dep.resolve()
    if any(dep == m or m in dep.parents for m in made):
        return []
    if dep.is_file():
        return [] if dep in known else [dep.relative_to(root.resolve())]
    found = []
    for here, dirs, files in walk(str(dep)):
        here_path = Path(here)
        dirs[:] = [d for d in dirs if here_path / d not in made and d not in (".git", ".dvc")]
        found += [(here_path / f).relative_to(root.resolve()) for f in files
                  if here_path / f not in known and here_path / f not in made]
    return found


def lock_keys(lock: Path) -> list[str]:
    """The stage entries of a dvc.lock file, in file order."""
    try:
        return list((yaml.safe_load(lock.read_text()) or {}).get("stages", {}))
    except (OSError, yaml.YAMLError):
        return []


def order_lock(lock: Path, before: list[str], plan_order: list[str]) -> None:
    """Put the entries a run added to ``lock`` in plan order, after those it had before the run.

    A sequential ``dvc repro`` appends new entries in the order the stages run (the plan's) and updates
    the others in place; stages finishing at the same time are restored in the order they finish.
    """
    from dvc.utils.serialize import modify_yaml

    keys = lock_keys(lock)
    added = [k for k in plan_order if k in keys and k not in before]
    if [k for k in keys if k not in before] == added:
        return
    with modify_yaml(str(lock)) as data:
        entries = data["stages"]
        for k in added:
            entries[k] = entries.pop(k)


def push_stage(root: Path | str, address: str) -> None:
    """Push a stage's outputs and its run-cache entry to the default DVC remote.

    With the run-cache there, a worker on another machine whose checkout lacks this dvc.lock restores the
    stage from the remote instead of running it (``run_stage(pull=True)``).
    """
    with _in_dir(root):
        repo = open_repo(root)
        try:
            repo.push(targets=[address], run_cache=True)
        finally:
            repo.close()


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stage_env(**values: str | None):
    """Set environment variables for the stage commands DVC starts (they inherit this process's env)."""
    return _env(**{k: v for k, v in values.items() if v is not None})


def nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"refine.epochs": 4}`` → ``{"refine": {"epochs": 4}}``."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        *head, last = key.split(".")
        node = out
        for part in head:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def apply_overrides(root: Path | str, overrides: dict[str, Any] | None) -> list[str]:
    """Write dotted-key overrides into params.yaml with ``dvc exp run --set-param`` semantics.

    The merged params are validated first, so a bad key or value stops here with one line naming it and
    params.yaml is untouched. Returns the ``key=value`` strings applied (DVC's own Hydra override code
    edits the file, keeping its layout).
    """
    if not overrides:
        return []
    from dvc.utils.hydra import apply_overrides as dvc_apply

    values = check_overrides(root, overrides)
    dvc_apply(Path(root) / PARAMS_FILE, values)
    return values


def check_overrides(root: Path | str, overrides: dict[str, Any] | None) -> list[str]:
    """Validate params.yaml with the overrides merged in; the ``key=value`` overrides to apply."""
    if not overrides:
        return []
    path = Path(root) / PARAMS_FILE
    try:
        base = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        raise PipelineError(f"{path}: missing or not valid YAML") from None
    overlay = nested(overrides)
    parse_params(merge(base, overlay), "flow parameter overrides")
    return set_param_values(overlay, base)


@contextlib.contextmanager
def workspace_snapshot(root: Path | str, files: tuple[str, ...] = (PARAMS_FILE, "dvc.lock")) -> Iterator[None]:
    """Put params.yaml and dvc.lock back afterwards and check the matching outputs out of the cache.

    A scheduled run with overrides is recorded as a DVC experiment; the workspace returns to what it was,
    as after a queued ``dvc exp run``, so the next scheduled run does not inherit the overrides.
    """
    saved = {f: (Path(root) / f).read_bytes() if (Path(root) / f).is_file() else None for f in files}
    try:
        yield
    finally:
        for f, data in saved.items():
            if data is not None:
                (Path(root) / f).write_bytes(data)
            else:
                (Path(root) / f).unlink(missing_ok=True)
        with _in_dir(root):
            repo = open_repo(root)
            try:
                repo.checkout(force=True)
            except Exception as exc:  # noqa: BLE001 - outputs missing from the cache: say so, keep going
                print(f"warning: dvc checkout after restoring params: {' '.join(str(exc).split())}", file=sys.stderr)
            finally:
                repo.close()


def save_experiment(root: Path | str, name: str, targets: list[str] | None = None) -> str | None:
    """Record the workspace (params, dvc.lock, metrics) as DVC experiment ``name``; its ref, or None without git.

    ``targets``: the stages this run covered. Without them DVC refuses to save while another pipeline of the
    same dvc.yaml has outputs missing from the workspace.
    """
    with _in_dir(root):
        repo = open_repo(root)
        try:
            metrics = [str(p) for s in repo.index.stages for o in s.outs if (o.metric or o.plot) and not o.use_cache
                       for p in [Path(o.fs_path).relative_to(Path(root).resolve())] if p.is_file()]
            try:
                return repo.experiments.save(targets=targets, name=name, force=True, include_untracked=metrics)
            except Exception as exc:  # noqa: BLE001 - no git repo or no commit yet: the run still counts
                print(f"warning: not recorded as a DVC experiment: {' '.join(str(exc).split())}", file=sys.stderr)
                return None
        finally:
            repo.close()


def check_root(root: Path | str) -> Path:
    root = Path(root).resolve()
    if not (root / "dvc.yaml").is_file():
        raise PipelineError(f"{root / 'dvc.yaml'}: not found (flows run in a DVC project root)")
    return root
