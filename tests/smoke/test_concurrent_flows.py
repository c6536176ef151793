"""Independent stages run at the same time (``run_plan(jobs=2)``), each in a slot workspace, and end as a
sequential run ends: same dvc.lock, same outputs, nothing left for ``dvc repro``. Real DVC, real Prefect API."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pipeline.flows import dag
from pipeline.flows.common import run_plan

BIN = str(Path(sys.executable).parent)

# sleeps, writes its inputs + its name + the params value, and records when it ran (outside the workspace)
SCRIPT = textwrap.dedent("""
    import json, os, sys, time, yaml
    from pipeline.errors import PipelineError, cli

    @cli
    def main():
        name, out, deps = sys.argv[1], sys.argv[2], sys.argv[3:]
        start = time.time()
        if os.environ.get("FAIL_STAGE") == name:
            raise PipelineError(f"stage {name}: told to fail")
        n = yaml.safe_load(open("params.yaml"))["tiny"]["n"]
        time.sleep({"a": 2.5, "b": 1.5, "c": 1.5}.get(name, 0))  # b ends first: dvc.lock entries get reordered
        text = "".join(open(d).read() for d in deps) + f"{name}:{n}\\n"
        if os.environ.get("NOISE"):  # an output that differs run to run, as a render's or a timing's
            text += f"{time.time()}\\n"
        os.makedirs(os.path.dirname(out), exist_ok=True)
        open(out, "w").write(text)
        with open(os.path.join(os.environ["TIMES_DIR"], name + ".json"), "w") as fh:
            json.dump([start, time.time(), os.environ.get("OMP_WAIT_POLICY")], fh)
        with open(os.path.join(os.environ["TIMES_DIR"], "runs.log"), "a") as fh:
            fh.write(name + "\\n")

    main()
""")

STAGES = {"a": [], "b": [], "c": [], "d": ["a", "b", "c"]}


def _project(root: Path, d_reads_folder: bool = False, ignore_out: bool = True) -> Path:
    """a, b, c independent, d reads their outputs; ``d_reads_folder``: d's dep is the folder ``out`` (as
    training_sets reads data/reinserted) and it writes res/d.txt; without ``ignore_out`` DVC writes
    out/.gitignore as it adds each output (as in data/reinserted)."""
    root.mkdir(parents=True)
    (root / "step.py").write_text(SCRIPT)
    (root / "params.yaml").write_text("tiny:\n  n: 1\n")
    stages = {n: {"cmd": f"python step.py {n} out/{n}.txt " + " ".join(f"out/{d}.txt" for d in deps),
                  "deps": ["step.py", *[f"out/{d}.txt" for d in deps]], "params": ["tiny.n"],
                  "outs": [f"out/{n}.txt"]} for n, deps in STAGES.items()}
    if d_reads_folder:
        stages["d"].update(cmd=stages["d"]["cmd"].replace("out/d.txt", "res/d.txt"), deps=["step.py", "out"],
                           outs=["res/d.txt"])
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / ".gitignore").write_text("/out/\n/res/\n" if ignore_out else "/res/\n")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.org"],
                ["git", "config", "user.name", "test"], [f"{BIN}/dvc", "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=root, check=True)
    # an uncommitted change, as a flow's params override is: the slots must run with it
    (root / "params.yaml").write_text("tiny:\n  n: 7\n")
    return root


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("TIMES_DIR", str(tmp_path))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    return tmp_path


def _run(root: Path, jobs: int) -> tuple[dict[str, str], float]:
    from prefect import flow

    @flow
    def tiny():
        return run_plan(root, dag.plan(root, ["d"]), jobs=jobs)

    start = time.perf_counter()
    state = tiny(return_state=True)
    assert state.is_completed(), state.message
    return state.result(), time.perf_counter() - start


def _interval(tmp_path: Path, name: str) -> tuple[float, float]:
    return tuple(json.loads((tmp_path / f"{name}.json").read_text())[:2])


def _wait_policy(tmp_path: Path, name: str) -> str | None:
    return json.loads((tmp_path / f"{name}.json").read_text())[2]


def test_independent_stages_overlap_and_end_as_a_sequential_run(env, prefect_harness):
    seq = _project(env / "seq")
    done, seq_s = _run(seq, jobs=1)
    assert done == {s: "ran" for s in STAGES}
    seq_times = {s: _interval(env, s) for s in "ab"}
    assert seq_times["a"][1] <= seq_times["b"][0]  # one after another
    assert _wait_policy(env, "a") is None  # one stage at a time: OpenMP's own default

    par = _project(env / "par")
    done, par_s = _run(par, jobs=2)
    assert done == {s: "ran" for s in STAGES}
    (a0, a1), (b0, b1) = _interval(env, "a"), _interval(env, "b")
    assert a0 < b1 and b0 < a1, "a and b did not run at the same time"
    # side by side, OpenMP threads sleep instead of spinning while they wait
    assert _wait_policy(env, "a") == _wait_policy(env, "b") == "PASSIVE"
    print(f"\nsequential {seq_s:.1f} s, jobs=2 {par_s:.1f} s")

    assert (par / "dvc.lock").read_text() == (seq / "dvc.lock").read_text()
    for s in STAGES:
        assert (par / f"out/{s}.txt").read_bytes() == (seq / f"out/{s}.txt").read_bytes()
    assert (par / "out/d.txt").read_text() == "a:7\nb:7\nc:7\nd:7\n"  # the uncommitted params
    out = subprocess.run([f"{BIN}/dvc", "repro"], cwd=par, capture_output=True, text=True)
    assert out.returncode == 0 and "Running stage" not in out.stdout, out.stdout
    assert subprocess.run(["git", "status", "--porcelain"], cwd=par, capture_output=True,
                          text=True).stdout.split() == ["M", "params.yaml", "??", "dvc.lock"]

    # again with nothing changed: nothing runs, in no slot
    (env / "a.json").unlink()
    done, _ = _run(par, jobs=2)
    assert done == {s: "skipped" for s in STAGES} and not (env / "a.json").exists()


def test_a_params_edit_right_after_a_commit_reaches_the_snapshot(tmp_path):
    """params.yaml rewritten at the same size in the second of the commit: git's stat cache cannot tell it
    changed, only its "racy git" check can, which compares with the index's mtime. The snapshot's copy of
    the index keeps that mtime, so a snapshot taken a second later still holds the edit."""
    from pipeline.flows import slots

    root = tmp_path / "racy"
    root.mkdir()
    (root / "params.yaml").write_text("n: 1\n")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.org"],
                ["git", "config", "user.name", "test"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=root, check=True)
    (root / "params.yaml").write_text("n: 7\n")
    time.sleep(1.1)
    snap = slots.snapshot(root, root / ".dvc" / "cache")
    shown = subprocess.run(["git", "show", f"{snap.commit}:params.yaml"], cwd=root, capture_output=True, text=True)
    assert shown.stdout == "n: 7\n"


def test_a_stale_lock_entry_makes_no_second_run(env, prefect_harness, monkeypatch):
    """A fresh clone's dvc.lock names outputs its cache lacks. A stage whose deps match that entry, and
    whose outputs differ run to run, runs once in its slot and is checked out here, not run again here."""
    root = _project(env / "clone")
    _run(root, jobs=1)  # the dvc.lock a clone inherits, without its cache or outputs
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "out")
    (env / "runs.log").unlink()
    monkeypatch.setenv("NOISE", "1")
    done, _ = _run(root, jobs=2)
    assert done == {s: "ran" for s in STAGES}
    assert sorted((env / "runs.log").read_text().split()) == sorted(STAGES)  # each stage ran once
    out = subprocess.run([f"{BIN}/dvc", "status"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0 and "up to date" in out.stdout, out.stdout


def test_a_folder_dep_with_leftovers_runs_here_once(env, prefect_harness):
    """d reads the folder out/, which here also holds a file no stage of the plan makes and git ignores (an
    earlier sweep config's folder, say). A slot would lack it, so d would hash its dep differently there and
    DVC would run d a second time here; d runs here instead, once, while a, b and c run in slots."""
    root = _project(env / "leftover", d_reads_folder=True)
    (root / "out").mkdir()
    (root / "out/old.txt").write_text("from an earlier run\n")
    movable, _ = dag.restorable(root, dag.plan(root, ["d"]))
    assert movable == {"a", "b", "c"}
    assert dag.leftovers(root, root / "out", [root / "out/a.txt"], set()) == [Path("out/old.txt")]
    done, _ = _run(root, jobs=2)
    assert done == {s: "ran" for s in STAGES}
    assert sorted((env / "runs.log").read_text().split()) == sorted(STAGES)  # each stage ran once
    assert (root / "res/d.txt").read_text() == "a:7\nb:7\nc:7\nd:7\n"
    out = subprocess.run([f"{BIN}/dvc", "status"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0 and "up to date" in out.stdout, out.stdout


def test_a_folder_dep_holding_dvc_gitignore_is_restored_not_rerun(env, prefect_harness):
    """DVC adds each output of a, b, c to out/.gitignore, in whichever workspace it runs or restores the
    stage, and out/.gitignore is part of d's dep. The slot that runs d gets this workspace's copy first, so
    d hashes its dep as it would here and is restored, not run a second time."""
    root = _project(env / "gitignore", d_reads_folder=True, ignore_out=False)
    done, _ = _run(root, jobs=2)
    assert done == {s: "ran" for s in STAGES}
    assert sorted((env / "runs.log").read_text().split()) == sorted(STAGES)  # each stage ran once
    assert sorted((root / "out/.gitignore").read_text().split()) == ["/a.txt", "/b.txt", "/c.txt"]
    out = subprocess.run([f"{BIN}/dvc", "status"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0 and "up to date" in out.stdout, out.stdout


def test_a_stage_error_in_a_slot_is_the_flow_message(env, prefect_harness, monkeypatch):
    root = _project(env / "fails")
    monkeypatch.setenv("FAIL_STAGE", "b")
    from prefect import flow

    @flow
    def tiny():
        return run_plan(root, dag.plan(root, ["d"]), jobs=2)

    state = tiny(return_state=True)
    assert state.is_failed()
    with pytest.raises(dag.StageFailed, match=r"^b: stage b: told to fail$"):
        state.result()
    assert not (root / "out/d.txt").exists()


def test_gpu_stages_in_flight_together_run_in_slots(env, prefect_harness, monkeypatch):
    """executor="pools", pool_jobs=2, no worker: the gpu deployment is faked by a process that runs the stage
    where the flow run's ``root`` says, as a pool worker on this machine would (a slot, not the workspace)."""
    from tests.smoke.test_flows import make_project

    root = make_project(env / "pools", {"a": [], "refine": ["a"], "train_detector": ["a"]})
    sent: list[tuple[str, float, float]] = []

    def run_deployment(name, timeout=None, parameters=None):
        from types import SimpleNamespace

        from prefect.states import Completed

        start = time.time()
        subprocess.run([f"{BIN}/dvc", "repro", "--single-item", *parameters["stages"]], cwd=parameters["root"],
                       check=True, capture_output=True)
        sent.append((parameters["root"], start, time.time()))
        return SimpleNamespace(name="fake-gpu-run", state=Completed())

    monkeypatch.setattr("prefect.deployments.run_deployment", run_deployment)
    from prefect import flow

    @flow
    def pools():
        return run_plan(root, dag.plan(root, ["refine", "train_detector"]), executor="pools", jobs=1, pool_jobs=2)

    assert pools() == {"a": "ran", "refine": "ran", "train_detector": "ran"}
    (root1, s1, e1), (root2, s2, e2) = sent
    assert root1 != root2 and all("/.dvc/tmp/slots/" in p for p in (root1, root2)), sent
    assert s1 < e2 and s2 < e1, "the two gpu-pool runs were not in flight together"
    assert (root / "out/refine.txt").read_text() == "a:1\nrefine:1\n"
    status = subprocess.run([f"{BIN}/dvc", "status", "--json"], cwd=root, capture_output=True, text=True)
    assert json.loads(status.stdout) == {}
