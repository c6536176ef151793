"""Workspaces for stages that run at the same time: one git worktree per slot, all sharing one DVC cache.

DVC holds one lock per workspace, so a stage that runs beside others runs in a slot of its own: a git
worktree of the project under ``.dvc/tmp/slots/<n>`` (kept and reused between stages and runs), checked
out at a snapshot commit of the orchestrating workspace. The snapshot is HEAD plus every uncommitted
change and every untracked file git does not ignore (params overrides a flow applied, edited code), so
the slot runs the same code with the same params; the orchestrator's current ``dvc.lock`` files are
copied in before each stage. The slot's DVC cache is the orchestrator's own (``cache.dir`` in the slot's
``.dvc/config.local``): the stage's upstream outputs are checked out of it, and the stage's outputs and
run-cache entry land in it, from where the orchestrating workspace restores the stage (no push or pull
on one machine, no remote needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ERROR_FILE_ENV, PipelineError

SLOTS_DIR = Path(".dvc/tmp/slots")
# a snapshot commit needs an identity; it is a throwaway object, never on a branch
_IDENTITY = {"GIT_AUTHOR_NAME": "pipeline", "GIT_AUTHOR_EMAIL": "pipeline@localhost",
             "GIT_COMMITTER_NAME": "pipeline", "GIT_COMMITTER_EMAIL": "pipeline@localhost"}


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise PipelineError(f"git {' '.join(args[:2])} in {cwd}: {' '.join(out.stderr.split())[:300]}")
    return out.stdout.strip()


@dataclass(frozen=True)
class Snapshot:
    """The orchestrating workspace as one commit: ``commit``; ``rel``: the DVC root inside the git work tree."""

    root: Path
    toplevel: Path
    rel: Path
    commit: str
    cache_dir: Path


def snapshot(root: Path, cache_dir: Path) -> Snapshot:
    """Commit the workspace as it is (tracked changes and untracked, non-ignored files) without touching it.

    A copy of git's index takes the changes (``git add -A``), so HEAD, the index and the files stay as they are.
    """
    probe = subprocess.run(["git", "rev-parse", "--show-toplevel", "--absolute-git-dir"], cwd=root,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise PipelineError(f"{root}: not a git repository; stages run at the same time (jobs > 1) in git "
                            f"worktrees of it (run with jobs 1, or `git init` and commit)")
    toplevel, git_dir = (Path(p) for p in probe.stdout.split("\n")[:2])
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **_IDENTITY, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if (git_dir / "index").is_file():
            # keeps git's stat cache (no rehashing), and the index's own mtime with it: git rehashes an entry
            # whose file changed in the same second as the index was written ("racy git") only when it can
            # compare with the index's mtime; a fresh copy's mtime hid a params.yaml edited right after a
            # commit at the same size, and the slots ran with the committed params
            shutil.copy2(git_dir / "index", Path(tmp) / "index")
        _git(toplevel, "add", "-A", env=env)
        tree = _git(toplevel, "write-tree", env=env)
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=toplevel, capture_output=True,
                          text=True).stdout.strip()
    if head and _git(toplevel, "rev-parse", f"{head}^{{tree}}") == tree:
        commit = head  # a clean workspace: the slots run at HEAD itself (the stages' MLflow git_rev tag)
    else:
        commit = _git(toplevel, "commit-tree", tree, *(["-p", head] if head else []), "-m",
                      "pipeline slot snapshot", env={**os.environ, **_IDENTITY})
    return Snapshot(root, toplevel, root.relative_to(toplevel), commit, cache_dir)


def prepare(snap: Snapshot, n: int) -> Path:
    """Slot ``n`` at the snapshot (created on first use, reused after); its DVC root."""
    path = snap.root / SLOTS_DIR / str(n)
    if (path / ".git").is_file():
        _git(path, "checkout", "-q", "-f", "--detach", snap.commit)
    else:
        if path.exists():  # a slot whose creation was interrupted
            shutil.rmtree(path)
        _git(snap.toplevel, "worktree", "prune")
        _git(snap.toplevel, "worktree", "add", "-q", "-f", "--detach", str(path), snap.commit)
    slot_root = path / snap.rel
    _share_cache(snap, slot_root)
    return slot_root


def _share_cache(snap: Snapshot, slot_root: Path) -> None:
    """The slot's local config: the orchestrator's (remote credentials, cache type), cache.dir its cache."""
    from dvc.config import Config

    local = snap.root / ".dvc" / "config.local"
    target = slot_root / ".dvc" / "config.local"
    if local.is_file():
        shutil.copyfile(local, target)
    else:
        target.unlink(missing_ok=True)
    config = Config(dvc_dir=str(slot_root / ".dvc"), validate=False)
    with config.edit("local", validate=False) as conf:
        conf["cache"]["dir"] = str(snap.cache_dir)


def lock_files(addresses: list[str]) -> list[Path]:
    """The ``dvc.lock`` files (relative to the DVC root) of the given stages' ``dvc.yaml`` files."""
    out = []
    for a in addresses:
        path, sep, _ = a.rpartition(":")
        if not sep and a.endswith(".dvc"):
            continue  # a .dvc file is its own lock
        lock = (Path(path).parent if sep else Path(".")) / "dvc.lock"
        if lock not in out:
            out.append(lock)
    return out


def git_files(root: Path, *pathspec: str) -> list[Path] | None:
    """The files under ``root`` git tracks or would add (untracked, not ignored), as paths relative to
    ``root``: what a snapshot holds. None when ``root`` is not in a git work tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *pathspec],
                         cwd=root, capture_output=True, text=True)
    return [Path(f) for f in out.stdout.split("\0") if f] if out.returncode == 0 else None


def gitignores(root: Path) -> list[Path]:
    """The ``.gitignore`` files of the workspace that git knows (tracked, or untracked and not ignored).

    DVC adds each output it writes or checks out to the ``.gitignore`` beside it, so these change as stages
    run here and in slots; one inside a stage's dep folder (``data/reinserted/.gitignore``) is part of
    that dep's hash. A slot gets this workspace's copies before each stage (``sync``), so it hashes such
    a dep as this workspace will, and the stage is restored here rather than run again.
    """
    return [f for f in git_files(root, ":(glob)**/.gitignore") or [] if (root / f).is_file()]


def run(slot_root: Path, address: str, upstream: list[str], locks: dict[str, str | None],
        pull: bool = False) -> None:
    """Run one stage in a prepared slot: give it the orchestrator's ``dvc.lock`` files now (``locks``: path ->
    text, None for none; they name the upstream outputs), check the upstream outputs out of the shared
    cache, then ``dvc repro --single-item`` (the stage runs, or comes back from the run-cache).

    Raises StageFailed as ``dag.run_stage`` does: the stage's own one-line error, or DVC's last error line.
    """
    sync(slot_root, locks)
    # one DVC process for both commands (its start-up is most of a small stage's overhead)
    commands = [["checkout", "--force", "--quiet", *upstream]] if upstream else []
    commands.append(["repro", "--single-item", *(["--pull"] if pull else []), address])
    _dvc(slot_root, address, commands)


def adopt(slot_root: Path, root: Path, address: str) -> None:
    """Give the orchestrator's ``dvc.lock`` the entry the slot's run wrote for ``address``, in place.

    DVC restores a stage from its ``dvc.lock`` entry when the stage's deps, params and command match it,
    and looks in the run-cache only otherwise. An entry from an earlier run (a fresh clone's, say) whose
    outputs are not in the cache, or differ from this run's, would therefore make DVC run the command
    again here; with the slot's entry it checks the slot's outputs out of the shared cache instead. A
    stage the orchestrator's lock does not name yet is left to the run-cache, which finds the slot's run.
    """
    from dvc.utils.serialize import load_yaml, modify_yaml

    [lock] = lock_files([address])
    key = address.rpartition(":")[2]
    mine, theirs = root / lock, slot_root / lock
    if not (mine.is_file() and theirs.is_file()):
        return
    entry = (load_yaml(str(theirs)) or {}).get("stages", {}).get(key)
    if entry is None:
        return
    with modify_yaml(str(mine)) as data:
        stages = data.get("stages") or {}
        if key in stages:
            stages[key] = entry


def sync(slot_root: Path, locks: dict[str, str | None]) -> None:
    """Write the orchestrator's ``dvc.lock`` files (and ``.gitignore`` files, ``gitignores``) into the slot."""
    for rel, text in locks.items():
        if text is None:
            (slot_root / rel).unlink(missing_ok=True)
        else:
            (slot_root / rel).write_text(text)


def checkout(slot_root: Path, address: str, upstream: list[str]) -> None:
    """Check the upstream stages' outputs out of the shared cache (for a pool worker to run ``address``)."""
    if upstream:  # outputs an earlier stage left in this slot are replaced without asking
        _dvc(slot_root, address, [["checkout", "--force", "--quiet", *upstream]])


# runs each DVC command line of argv[1] (JSON) in turn, stopping at the first that fails
_MAIN = """
import json, sys
from dvc.cli import main
for argv in json.loads(sys.argv[1]):
    if rc := main(argv):
        sys.exit(rc)
"""


# A slot's stage shares the cores with other stages. OpenMP's default lets a thread that waits at a barrier
# spin for a while before it sleeps; with two training processes on two cores the spinning thread takes the
# core its peer needs. bench/omp_side_by_side.py (the demo's detector, 2 cores): two side by side took 3.2x
# the time of the two one after the other with the default, 1.3x with PASSIVE, the same weights either way
# (the thread count, and so every result, is unchanged). A value the user set wins.
_SIDE_BY_SIDE = {"OMP_WAIT_POLICY": "PASSIVE"}


def _dvc(slot_root: Path, address: str, commands: list[list[str]]) -> None:
    from pipeline.flows.dag import StageFailed

    with tempfile.TemporaryDirectory() as tmp:
        err = Path(tmp) / "error"
        out = subprocess.run([sys.executable, "-c", _MAIN, json.dumps(commands)], cwd=slot_root, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**_SIDE_BY_SIDE, **os.environ, ERROR_FILE_ENV: str(err)})
        # the stage's own output, as under `dvc repro` (log_prints shows it); on failure without DVC's own
        # error lines: the error raised below says it once
        shown = out.stdout if out.returncode == 0 else "\n".join(
            ln for ln in out.stdout.splitlines() if not ln.startswith("ERROR"))
        if shown.strip():
            print(shown.rstrip())
        if out.returncode == 0:
            return
        if err.is_file():
            raise StageFailed(address, err.read_text().strip(), user_error=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
        raise StageFailed(address, f"in slot {slot_root}: {' '.join(last.split())}", user_error=False)
