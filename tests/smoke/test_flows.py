"""Prefect flows over a small real DVC project, under Prefect's test harness (a real temporary API).

The project's stages are short Python scripts, so these tests check the orchestration itself: the
plan, skipping, params overrides recorded as DVC experiments, errors and retries. The detection DAG
itself runs through a flow in tests/e2e/test_prefect_flows.py.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.flows import common, dag
from pipeline.flows.common import orchestrate, run_plan
from pipeline.flows.sweep import branch_of, expand_grid, sweep_overrides
from tests.conftest import ROOT

BIN = str(Path(sys.executable).parent)

SCRIPT = textwrap.dedent("""
    import json, os, sys, yaml
    from pipeline.errors import PipelineError, cli

    @cli
    def main():
        name, out = sys.argv[1], sys.argv[2]
        p = yaml.safe_load(open("params.yaml"))
        with open("calls.log", "a") as fh:
            fh.write(name + "\\n")
        if os.path.exists("bad-input.txt"):
            raise PipelineError(f"bad-input.txt: not a valid input for stage {name}")
        if name == "flaky" and not os.path.exists("flaky.ok"):
            open("flaky.ok", "w").close()
            sys.exit(1)  # fails once, like a worker that lost its GPU
        text = "".join(open(f).read() for f in sys.argv[3:]) + f"{name}:{p['report']['detections']}\\n"
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        open(out, "w").write(text)
        json.dump({"lines": text.count(chr(10))}, open(f"metrics_{name}.json", "w"))

    main()
""")


def _stage(name: str, deps: list[str]) -> dict:
    return {"cmd": f"python step.py {name} out/{name}.txt " + " ".join(f"out/{d}.txt" for d in deps),
            "deps": ["step.py", *[f"out/{d}.txt" for d in deps]], "params": ["report.detections"],
            "outs": [f"out/{name}.txt"], "metrics": [f"metrics_{name}.json"]}


def _write_params(root: Path, detections: int) -> None:
    """The repository's params (a flow validates the whole file) with the toy stages' knob set."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["report"].update(detections=detections, pca_points=10)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def make_project(root: Path, stages: dict[str, list[str]]) -> Path:
    """A git + DVC project whose stages concatenate their inputs (``stages``: name -> upstream names)."""
    root.mkdir(parents=True)
    (root / "step.py").write_text(SCRIPT)
    _write_params(root, detections=1)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {n: _stage(n, d) for n, d in stages.items()}},
                                                  sort_keys=False))
    (root / ".gitignore").write_text("/out/\ncalls.log\nflaky.ok\nbad-input.txt\nmetrics_*.json\n")
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.org"],
                ["git", "config", "user.name", "test"], [f"{BIN}/dvc", "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=root, check=True, env=env)
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return make_project(tmp_path / "proj", {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})


def _calls(root: Path) -> list[str]:
    log = root / "calls.log"
    return log.read_text().split() if log.is_file() else []


def _flow(root: Path, overrides=None, record=True, exp_name=None):
    from prefect import flow

    @flow(name="tiny")
    def tiny():
        return orchestrate("tiny", str(root), overrides, exp_name, record,
                           lambda r: run_plan(r, dag.plan(r, ["d"])))

    return tiny(return_state=True)


def test_plan_is_dvc_order_with_upstream(project):
    planned = dag.plan(project, ["d"])
    assert [s.address for s in planned] == ["a", "b", "c", "d"]
    assert planned[3].upstream == ("b", "c") and planned[0].upstream == ()
    assert [s.address for s in dag.plan(project, ["b"])] == ["a", "b"]


def test_flow_runs_changed_stages_then_skips_and_dvc_agrees(project, prefect_harness):
    state = _flow(project, record=False)
    assert state.is_completed()
    assert state.result() == {s: "ran" for s in "abcd"}
    assert (project / "out/d.txt").read_text() == "a:1\nb:1\na:1\nc:1\nd:1\n"
    again = _flow(project, record=False).result()
    assert again == {s: "skipped" for s in "abcd"} and _calls(project) == list("abcd")
    out = subprocess.run([f"{BIN}/dvc", "repro"], cwd=project, capture_output=True, text=True)
    assert out.returncode == 0 and "Running stage" not in out.stdout, out.stdout


def test_overrides_become_a_dvc_experiment_and_workspace_is_restored(project, prefect_harness):
    assert _flow(project, record=False).is_completed()
    before = (project / "params.yaml").read_text()
    state = _flow(project, overrides={"report.detections": 5}, exp_name="five")
    assert state.is_completed(), state.message
    assert (project / "params.yaml").read_text() == before
    show = subprocess.run([f"{BIN}/dvc", "exp", "show", "--json"], cwd=project, capture_output=True, text=True)
    exps = [e for rev in json.loads(show.stdout) for e in (rev.get("experiments") or [])]
    runs = {e["name"]: e["revs"][0]["data"] for e in exps}
    assert runs["five"]["params"]["params.yaml"]["data"]["report"]["detections"] == 5
    assert runs["five"]["metrics"]["metrics_d.json"]["data"]["lines"] == 5
    # back in the workspace: outputs match the restored params, so dvc has nothing to do
    status = subprocess.run([f"{BIN}/dvc", "status", "--json"], cwd=project, capture_output=True, text=True)
    assert json.loads(status.stdout) == {}


def test_bad_override_stops_before_any_stage(project, prefect_harness):
    before = (project / "params.yaml").read_text()
    state = _flow(project, overrides={"report.detectionz": 5})
    assert state.is_failed()
    with pytest.raises(PipelineError, match="report.detectionz"):
        state.result()
    assert (project / "params.yaml").read_text() == before and _calls(project) == []


def test_stage_error_is_the_flow_message_and_is_not_retried(project, prefect_harness):
    (project / "bad-input.txt").write_text("?")
    state = _flow(project, record=False)
    assert state.is_failed()
    assert "a: bad-input.txt: not a valid input for stage a" in state.message
    with pytest.raises(dag.StageFailed, match=r"^a: bad-input.txt: not a valid input for stage a$"):
        state.result()
    assert _calls(project) == ["a"]  # a user error is not retried


def _experiments(root: Path) -> set[str]:
    out = subprocess.run([f"{BIN}/dvc", "exp", "list", "--name-only"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def _parent_counts(pipeline: str, exp_name: str) -> tuple[int, int]:
    """The MLflow parent run's (stages_ran, stages_skipped) of the flow run recorded as ``exp_name``."""
    from pipeline.tracking import search_runs

    runs = search_runs(pipeline, f"tags.dvc_exp_name = '{exp_name}'")
    assert len(runs) == 1, runs
    return int(runs["metrics.stages_ran"].iloc[0]), int(runs["metrics.stages_skipped"].iloc[0])


def _counting_run_stage(monkeypatch) -> list[str]:
    reproduced: list[str] = []
    real = dag.run_stage

    def run_stage(root, address, pull=False):
        reproduced.append(address)
        return real(root, address, pull=pull)

    monkeypatch.setattr(dag, "run_stage", run_stage)
    return reproduced


def test_noop_run_records_no_experiment_and_opens_no_stage(project, prefect_harness, monkeypatch):
    assert _flow(project, exp_name="first").is_completed()
    assert "first" in _experiments(project)
    reproduced = _counting_run_stage(monkeypatch)
    state = _flow(project, exp_name="noop")
    assert state.is_completed(), state.message
    assert state.result() == {s: "skipped" for s in "abcd"}
    assert "noop" not in _experiments(project)  # nothing ran, nothing overridden: no new experiment
    assert reproduced == []  # decided up to date in one check, no per-stage reproduce
    assert _parent_counts("tiny", "noop") == (0, 4)
    # b's output goes missing: b runs again; d (downstream of b) is left to DVC, which skips it; a and c
    # are known up to date; something ran, so the run is an experiment again
    (project / "out/b.txt").unlink()
    state = _flow(project, exp_name="b-again")
    assert state.result() == {"a": "skipped", "b": "ran", "c": "skipped", "d": "skipped"}
    assert reproduced == ["b", "d"] and "b-again" in _experiments(project)
    assert _parent_counts("tiny", "b-again") == (1, 3)


def test_pool_stages_are_counted_and_up_to_date_ones_not_sent(tmp_path, monkeypatch, prefect_harness):
    """executor="pools" without a worker: the gpu deployment is faked by running the stage in this checkout."""
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    root = make_project(tmp_path / "pools", {"a": [], "refine": ["a"], "d": ["refine"]})
    assert [s.address for s in dag.plan(root, ["d"]) if s.gpu] == ["refine"]
    sent: list[str] = []

    def run_deployment(name, timeout=None, parameters=None):
        from types import SimpleNamespace

        from prefect.states import Completed

        sent.extend(parameters["stages"])
        for address in parameters["stages"]:
            dag.run_stage(parameters["root"], address)
        return SimpleNamespace(name="fake-gpu-run", state=Completed())

    monkeypatch.setattr("prefect.deployments.run_deployment", run_deployment)
    from prefect import flow

    @flow
    def pools(exp_name: str):
        return orchestrate("tiny", str(root), None, exp_name, False,
                           lambda r: run_plan(r, dag.plan(r, ["d"]), executor="pools"))

    assert pools("pools-1") == {"a": "ran", "refine": "ran", "d": "ran"} and sent == ["refine"]
    assert _parent_counts("tiny", "pools-1") == (3, 0)
    assert pools("pools-2") == {"a": "skipped", "refine": "skipped", "d": "skipped"}
    assert sent == ["refine"]  # up to date here: not sent to the pool again
    assert _parent_counts("tiny", "pools-2") == (0, 3)
    # a reruns and writes the same output: checked again when its turn comes, refine is still up to date
    (root / "out/a.txt").write_text("changed\n")
    assert pools("pools-3") == {"a": "ran", "refine": "skipped", "d": "skipped"} and sent == ["refine"]
    assert _parent_counts("tiny", "pools-3") == (1, 2)
    _write_params(root, detections=2)
    assert pools("pools-4") == {"a": "ran", "refine": "ran", "d": "ran"} and sent == ["refine", "refine"]
    assert (root / "out/d.txt").read_text() == "a:2\nrefine:2\nd:2\n"


def _flow_run_logs(flow_run_id) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


LINE = "a: bad-input.txt: not a valid input for stage a"


def test_user_error_is_one_log_line_without_traceback(project, prefect_harness):
    (project / "bad-input.txt").write_text("?")
    state = _flow(project, record=False)
    assert state.is_failed()
    messages = _flow_run_logs(state.state_details.flow_run_id)
    assert LINE in messages, messages
    assert not [m for m in messages if "Traceback" in m], messages


def test_user_error_in_a_worker_started_flow_run_is_one_line(project, prefect_harness):
    """The flow run a gpu/cpu pool worker starts: ``python -m prefect.engine`` in a fresh process, as the process
    worker runs it, for the ``run-stages`` deployment's entrypoint (no flow_cli, so none of its setup)."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL



    (project / "bad-input.txt").write_text("?")
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(common.run_stages, parameters={"root": str(project), "stages": ["a"]})
    out = subprocess.run([sys.executable, "-m", "prefect.engine"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
                              "PREFECT__FLOW_RUN_ID": str(run.id),
                              "PREFECT__FLOW_ENTRYPOINT": f"{ROOT}/pipeline/flows/common.py:run_stages"})
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run.id).state.is_failed(), out.stderr[-3000:]
    messages = _flow_run_logs(run.id)
    assert LINE in messages, (messages, out.stderr[-3000:])
    assert not [m for m in messages if "Traceback" in m], messages
    assert _calls(project) == ["a"]  # not retried


def test_transient_failure_is_retried(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    root = make_project(tmp_path / "p", {"flaky": []})
    monkeypatch.setattr(common, "dvc_stage", common.dvc_stage.with_options(retry_delay_seconds=0))
    from prefect import flow

    @flow
    def one():
        return run_plan(root, dag.plan(root, ["flaky"]))

    state = one(return_state=True)
    assert state.is_completed() and state.result() == {"flaky": "ran"}
    assert _calls(root) == ["flaky", "flaky"]


def test_grid_and_branches():
    configs = {"C_CP_S": {"arch": "cyclegan", "skip": True, "losses": {"cyc_pixel": 10}}}
    grid = expand_grid(configs, {"C_CP_S": {"losses.cyc_pixel": [5, 2.5]}})
    assert grid == {"C_CP_S__cyc_pixel5": {"arch": "cyclegan", "skip": True, "losses": {"cyc_pixel": 5}},
                    "C_CP_S__cyc_pixel2p5": {"arch": "cyclegan", "skip": True, "losses": {"cyc_pixel": 2.5}}}
    with pytest.raises(PipelineError, match="unknown refiner config 'X'"):
        expand_grid(configs, {"X": {"losses.gan": [1]}})
    names = ["C_CP_S", "C_CP_S__cyc_pixel5"]
    assert branch_of("refine@C_CP_S", names) == "C_CP_S"
    assert branch_of("train_detector@C_CP_S__cyc_pixel5-1", names) == "C_CP_S__cyc_pixel5"
    assert branch_of("train_detector@R-0", names) is None and branch_of("crop", names) is None


def test_sweep_overrides_validate_and_add_configs(tmp_path):


    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    names, over = sweep_overrides(tmp_path, ["C_CP_S"], {"C_CP_S": {"losses.cyc_pixel": [3]}}, [0])
    assert names == ["C_CP_S", "C_CP_S__cyc_pixel3"]
    assert over["train_detector.sets"] == ["S", "R", *names] and over["evaluate.seeds"] == [0]
    applied = dag.apply_overrides(tmp_path, over)
    assert "+refine.configs.C_CP_S__cyc_pixel3.losses.cyc_pixel=3" in applied
    p = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert p["refine"]["configs"]["C_CP_S__cyc_pixel3"]["losses"] == {"cyc_pixel": 3}
    assert p["refine"]["run"] == names


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.flows", "detection", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PREFECT_HOME": str(root.parent / "prefect-home")})


def test_cli_bad_override_is_one_line_exit_2(project):
    out = _cli(project, "--set", "report.detections=lots")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: report.detections:")
    out = _cli(project, "--set", "nonsense")
    assert out.returncode == 2 and out.stderr.strip() == "error: --set nonsense: expected key=value"


def test_cli_stage_error_is_one_line_exit_2(project):
    (project / "dvc.yaml").write_text((project / "dvc.yaml").read_text().replace("  d:\n", "  report:\n"))
    (project / "bad-input.txt").write_text("?")
    out = _cli(project, "--no-record")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    # the stage's own line (as under `dvc repro`), then the flow's, which names the stage
    assert errors == ["error: bad-input.txt: not a valid input for stage a",
                      "error: a: bad-input.txt: not a valid input for stage a"], out.stderr[-3000:]


def test_share_lets_another_checkout_restore_instead_of_rerunning(project, tmp_path, prefect_harness):
    remote = tmp_path / "remote"
    subprocess.run([f"{BIN}/dvc", "remote", "add", "-d", "store", str(remote)], cwd=project, check=True)
    subprocess.run(["git", "commit", "-qam", "remote"], cwd=project, check=True)
    from prefect import flow

    @flow
    def shared(root: Path):
        return run_plan(root, dag.plan(root, ["d"]), share=True)

    assert set(shared(project).values()) == {"ran"}
    other = tmp_path / "other"  # a second machine: same commit, no dvc.lock, no cache
    subprocess.run(["git", "clone", "-q", str(project), str(other)], check=True)
    assert not (other / "dvc.lock").exists()
    state = shared(other, return_state=True)
    assert state.is_completed(), state.message
    assert _calls(other) == []  # every stage came back from the remote's run-cache
    assert (other / "out/d.txt").read_text() == (project / "out/d.txt").read_text()
    # a gpu-pool worker's flow on a third checkout: asked for `d` only, it restores a, b, c first
    third = tmp_path / "third"
    subprocess.run(["git", "clone", "-q", str(project), str(third)], check=True)
    done = common.run_stages(root=str(third), stages=["d"], pull=True, push=True)
    assert done == {"a": "ran", "b": "ran", "c": "ran", "d": "ran"} and _calls(third) == []
    assert (third / "out/d.txt").read_text() == (project / "out/d.txt").read_text()


def test_experiment_is_recorded_while_another_pipeline_has_not_run(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    root = make_project(tmp_path / "two", {"a": [], "b": ["a"], "other": []})  # `other`: another pipeline

    from prefect import flow

    @flow
    def first():
        return orchestrate("tiny", str(root), None, "just-b", True, lambda r: run_plan(r, dag.plan(r, ["b"])))

    assert first(return_state=True).is_completed() and not (root / "out/other.txt").exists()
    show = subprocess.run([f"{BIN}/dvc", "exp", "show", "--json"], cwd=root, capture_output=True, text=True)
    assert "just-b" in {e["name"] for rev in json.loads(show.stdout) for e in (rev.get("experiments") or [])}
