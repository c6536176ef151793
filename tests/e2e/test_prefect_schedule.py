"""A cron deployment on a real `prefect server` gets scheduled runs, and a worker completes one.

The server's scheduler service bulk-inserts the runs it schedules; with SQLAlchemy 2.1 (Prefect 3.8.8) every
loop failed (`InvalidRequestError: Can't evaluate bulk DML statement`), the deployments showed their schedules
and no run was ever created. This test fails on that: no scheduled runs, or a traceback in the server's log.
"""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import server_json, stop_processes

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)

FLOW = """
from prefect import flow


@flow
def f() -> int:
    return 1
"""

# through the project's own helpers: the cpu/gpu process pools and a cron Spec, as `python -m pipeline.flows.deploy`
DEPLOY = """
import sys
from pathlib import Path
from prefect.client.orchestration import get_client
from pipeline.flows.deploy import Spec, deploy, ensure_pools

ensure_pools(1)
[name] = deploy(Path(sys.argv[1]), [Spec("every-minute", "f.py:f", "cpu", "* * * * *")])
with get_client(sync_client=True) as client:
    d = client.read_deployment_by_name(name)
    print("DEPLOYMENT", d.id, [(s.schedule.cron, s.schedule.timezone) for s in d.schedules])
"""

# a traceback or an ERROR-level record in the server's log (the scheduler logs its failed loops at ERROR);
# it counts when it comes from the scheduler (another service's error on a loaded machine is not this test's)
SERVER_ERROR = re.compile(r"Traceback|InvalidRequestError|\|\s*ERROR\s*\|")
SCHEDULER = re.compile(r"schedul|InvalidRequestError|bulk DML", re.IGNORECASE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_errors(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    blocks = ["\n".join(lines[i:i + 40]) for i, line in enumerate(lines) if SERVER_ERROR.search(line)]
    return next((b for b in blocks if SCHEDULER.search(b)), "")


@pytest.mark.timeout(420)
def test_cron_deployment_is_scheduled_and_a_worker_completes_a_run(tmp_path):
    import httpx

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(ROOT),
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.py").write_text(FLOW)
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    procs = []
    with server_log.open("w") as fh:
        procs.append(subprocess.Popen([f"{BIN}/prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                       str(port)], env=env, cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert procs[0].poll() is None, server_log.read_text()[-3000:]
            if time.monotonic() > deadline:
                pytest.fail("prefect server did not answer on 127.0.0.1 in 120 s\n" + server_log.read_text()[-3000:])
            time.sleep(0.5)

        out = subprocess.run([sys.executable, "-c", DEPLOY, str(src)], env=env, cwd=src, capture_output=True,
                             text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        line = next(line for line in out.stdout.splitlines() if line.startswith("DEPLOYMENT"))
        deployment_id = line.split()[1]
        assert line.endswith("[('* * * * *', 'UTC')]"), line
        d = server_json("GET", f"{api}/deployments/{deployment_id}")
        assert [s["schedule"]["timezone"] for s in d["schedules"]] == ["UTC"]

        def runs(*states: str) -> list[dict]:
            flow_runs = {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": list(states)}}}
            return server_json("POST", f"{api}/flow_runs/filter", json={"flow_runs": flow_runs})

        # the scheduler runs every 5 s here (60 s by default) and the recent-deployments one every 5 s
        deadline = time.monotonic() + 60
        while not (scheduled := runs("SCHEDULED")):
            if errors := _server_errors(server_log):
                pytest.fail("the server logged an error before any run was scheduled:\n" + errors)
            if time.monotonic() > deadline:
                pytest.fail("no scheduled run 60 s after deploying\n" + server_log.read_text()[-3000:])
            time.sleep(1)
        assert all(r["deployment_id"] == deployment_id for r in scheduled)

        with worker_log.open("w") as fh:
            procs.append(subprocess.Popen([f"{BIN}/prefect", "worker", "start", "--pool", "cpu"], env=env,
                                          cwd=src, stdout=fh, stderr=subprocess.STDOUT))
        # the first run is due at the next minute; the worker then starts a process that runs it
        deadline = time.monotonic() + 150
        while not (done := runs("COMPLETED")):
            bad = runs("FAILED", "CRASHED")
            assert not bad, f"{bad[0]['state']}\n" + worker_log.read_text()[-3000:]
            assert procs[1].poll() is None, worker_log.read_text()[-3000:]
            if time.monotonic() > deadline:
                pytest.fail("no scheduled run COMPLETED 150 s after the worker started\n"
                            + worker_log.read_text()[-3000:])
            time.sleep(2)
        assert done[0]["auto_scheduled"] and done[0]["work_pool_name"] == "cpu"
        if errors := _server_errors(server_log):
            pytest.fail("the server logged an error:\n" + errors)
    finally:
        stop_processes(procs[::-1])  # workers before the server
