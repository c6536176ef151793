"""The tiny demo DAG through the Prefect flows: under the test harness, and deployed on a real server.

One scratch project serves the module, in order: the detection flow runs it from nothing, `dvc repro`
then finds nothing to do; `dvc repro` runs a changed stage and the flow then skips everything; a refiner
sweep; each domain's flow (sensor, audio, anime, video) runs its own stages only; and last a real `prefect server` on 127.0.0.1 with deployments on process work pools and workers.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.domains import DOMAINS
from pipeline.flows import dag
from pipeline.flows.pipelines import FLOWS
from pipeline.flows.sweep import refiner_sweep
from tests.conftest import scratch_project, server_json, stop_processes

FINAL_STAGES = list(DOMAINS["detection"].final_stages)
detection = FLOWS["detection"]
GAN_DOMAINS = [name for name in DOMAINS if name != "detection"]

BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    return scratch_project(tmp_path_factory.mktemp("flows") / "proj")


@pytest.fixture(autouse=True)
def _path(monkeypatch, proj):
    # stage commands call `python`/`dvc`: this interpreter's; one MLflow store for the module
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{proj.parent / 'mlflow.db'}")


def _dvc(proj: Path, *args: str) -> str:
    res = subprocess.run([f"{BIN}/dvc", *args], cwd=proj, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}


def test_flow_first_then_dvc_repro_has_nothing_to_do(proj, prefect_harness):
    import mlflow

    state = detection(root=str(proj), exp_name="flow-first", return_state=True)
    assert state.is_completed(), state.message
    done = state.result()
    planned = [s.address for s in dag.plan(proj, FINAL_STAGES)]
    assert list(done) == planned and set(done.values()) == {"ran"}
    assert (proj / "reports/detection/report.md").is_file()

    log = _dvc(proj, "repro", "report")  # the detection pipeline; the sensor stages are another flow's
    assert _ran(log) == set() and "up to date" in log

    # one MLflow parent for the flow run, a child per stage, all tagged with the flow run id
    flow_run_id = str(state.state_details.flow_run_id)
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["detection"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("prefect_flow_run_id") == flow_run_id
               and "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["dvc_exp_name"] == "flow-first"
    assert parents[0].data.metrics["stages_ran"] == len(planned)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    configs = [r for r in children if r.data.tags.get("kind") == "refiner_config"]
    children = [r for r in children if r not in configs]
    assert {r.data.tags["stage"] for r in children} == set(planned)
    # evaluate's comparison runs: one per refiner config, with its loss weights and its set's test F1
    run_list = yaml.safe_load((proj / "params.yaml").read_text())["refine"]["run"]
    assert sorted(r.data.tags["refiner"] for r in configs) == sorted(run_list)
    assert all("loss.cyc_pixel" in r.data.params for r in configs)
    sets = yaml.safe_load((proj / "params.yaml").read_text())["train_detector"]["sets"]
    assert {r.data.tags["refiner"] for r in configs if "f1_test" in r.data.metrics} == set(run_list) & set(sets)
    assert all(r.data.tags["prefect_flow_run_id"] == flow_run_id for r in children)
    assert all(r.data.tags["dvc_exp_name"] == "flow-first" for r in children)
    exps = json.loads(_dvc(proj, "exp", "show", "--json").splitlines()[0])
    assert "flow-first" in {e["name"] for rev in exps for e in (rev.get("experiments") or [])}


def test_dvc_repro_first_then_flow_skips_everything(proj, prefect_harness):
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["report"]["detections"] = 2
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    assert _ran(_dvc(proj, "repro", "report")) == {"report"}
    state = detection(root=str(proj), record=False, return_state=True)
    assert state.is_completed(), state.message
    assert set(state.result().values()) == {"skipped"}


def test_refiner_sweep_fans_out_and_compares(proj, prefect_harness):
    config = yaml.safe_load((proj / "params.yaml").read_text())["refine"]["run"][0]
    before = (proj / "params.yaml").read_text()
    state = refiner_sweep(configs=[config], root=str(proj), exp_name="sweep-one", return_state=True)
    assert state.is_completed(), state.message
    table = state.result()
    assert {r["set"] for r in table} == {"S", "R", config}
    assert all(r["seeds"] == 1 and 0.0 <= r["test_f1_mean"] <= 1.0 for r in table)
    assert (proj / "params.yaml").read_text() == before  # the sweep's params live in its experiment
    exps = json.loads(_dvc(proj, "exp", "show", "--json").splitlines()[0])
    sweep = [e for rev in exps for e in (rev.get("experiments") or []) if e["name"] == "sweep-one"]
    data = sweep[0]["revs"][0]["data"]["params"]["params.yaml"]["data"]
    assert data["refine"]["run"] == [config] and data["train_detector"]["sets"] == ["S", "R", config]


@pytest.mark.parametrize("domain", GAN_DOMAINS)
def test_domain_flow_then_dvc_repro_has_nothing_to_do(proj, prefect_harness, domain):
    final = list(DOMAINS[domain].final_stages)
    state = FLOWS[domain](root=str(proj), record=False, return_state=True)
    assert state.is_completed(), state.message
    done = state.result()
    assert list(done) == [s.address for s in dag.plan(proj, final)] and set(done.values()) == {"ran"}
    assert all(a.startswith(f"{domain}_") for a in done)  # a domain's flow runs only its own stages
    assert _ran(_dvc(proj, "repro", *final)) == set()
    assert (proj / f"reports/{domain}/report.md").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEPLOY_AND_TRIGGER = """
import sys, time
from pathlib import Path
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from pipeline.flows.deploy import deploy, deployments, ensure_pools

root = Path(sys.argv[1])
ensure_pools(1)
names = deploy(root, deployments(root))
with get_client(sync_client=True) as client:
    pools = {p.name: p for p in client.read_work_pools()}
    print("POOLS", pools["gpu"].concurrency_limit, pools["gpu"].type, pools["cpu"].type)
    for name in names:
        d = client.read_deployment_by_name(name)
        print("DEPLOYMENT", name, d.work_pool_name, [(s.schedule.cron, s.schedule.timezone) for s in d.schedules])
# a detector knob: the detectors are out of date, the rest of the DAG is not
run = run_deployment("detection/nightly", timeout=0,
                     parameters={"record": False, "overrides": {"train_detector.epochs": 2}})
print("TRIGGERED", run.id)
"""


def test_deployment_on_a_real_prefect_server(proj, tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    procs = [subprocess.Popen([f"{BIN}/prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    try:
        import httpx

        for _ in range(240):
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not answer on 127.0.0.1 in 120 s")
        out = subprocess.run([sys.executable, "-c", DEPLOY_AND_TRIGGER, str(proj)], env=env, cwd=proj,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        lines = out.stdout.splitlines()
        assert "POOLS 1 process process" in lines
        assert "DEPLOYMENT detection/nightly cpu [('0 2 * * *', 'UTC')]" in lines
        assert "DEPLOYMENT refiner-sweep/weekly cpu [('0 3 * * 6', 'UTC')]" in lines
        for domain in GAN_DOMAINS:
            assert f"DEPLOYMENT {domain}/nightly cpu [({DOMAINS[domain].cron!r}, 'UTC')]" in lines
        assert "DEPLOYMENT run-stages/gpu gpu []" in lines
        assert "DEPLOYMENT render-shard/gpu gpu []" in lines and "DEPLOYMENT render-shard/cpu cpu []" in lines
        flow_run_id = next(line.split()[1] for line in lines if line.startswith("TRIGGERED"))

        logs = tmp_path / "workers.log"
        with logs.open("w") as fh:
            for pool in ("cpu", "gpu"):
                procs.append(subprocess.Popen([f"{BIN}/prefect", "worker", "start", "--pool", pool, "--limit", "1"],
                                              env=env, cwd=proj, stdout=fh, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 900
        while (state := server_json("GET", f"{api}/flow_runs/{flow_run_id}")["state"]["type"]) not in (
                "COMPLETED", "FAILED", "CRASHED", "CANCELLED") and time.monotonic() < deadline:
            time.sleep(1)
        assert state == "COMPLETED", logs.read_text()[-5000:]
        # the nightly run sent its out-of-date GPU stages (the detectors) to the gpu pool, one run-stages flow
        # run each; the up-to-date ones (the refiners) were reported skipped and not sent
        gpu_stages = [s.address for s in dag.plan(proj, FINAL_STAGES) if s.gpu and s.name == "train_detector"]
        subs = server_json("POST", f"{api}/flow_runs/filter", json={
            "flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}})
        assert sorted(r["parameters"]["stages"][0] for r in subs) == sorted(gpu_stages)
        assert all(r["state"]["type"] == "COMPLETED" for r in subs)
        assert all(r["work_queue_name"] and r["work_pool_name"] == "gpu" for r in subs)
        # the MLflow parent counts the pool stages: the detectors, then evaluate and report ran here
        import mlflow

        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        [parent] = [r for r in mlflow.search_runs(experiment_names=["detection"], output_format="list")
                    if r.data.tags.get("prefect_flow_run_id") == flow_run_id
                    and "mlflow.parentRunId" not in r.data.tags]
        planned = dag.plan(proj, FINAL_STAGES)
        assert parent.data.metrics["stages_ran"] == len(gpu_stages) + 2
        assert parent.data.metrics["stages_skipped"] == len(planned) - len(gpu_stages) - 2
    finally:
        stop_processes(procs)
