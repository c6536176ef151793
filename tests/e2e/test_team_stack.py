"""The team stack for real: `python -m pipeline.stack up` starts PostgreSQL, a Prefect server and an MLflow
server on 127.0.0.1 with generated credentials, and a folder DVC remote; two process workers on the `gpu`
pool (one per "GPU", CUDA_VISIBLE_DEVICES 0 and 1, pool limit 2) run two flow runs at the same time. Each run
reproduces one DVC stage in its own clone of a tiny project, pushes it to the remote and logs an MLflow run
with an artifact through the server's proxy. Then `down` stops everything, twice.

The runs wait for each other at a barrier, so they complete only if two workers really run them at once.
"""

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import stop_processes

from pipeline.stack.servers import load

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)

FLOW = """
import os
import subprocess
import time
from pathlib import Path

import mlflow
from prefect import flow
from prefect.runtime import flow_run


@flow
def probe(stage: str, project: str, shared: str) -> str:
    shared = Path(shared)
    (shared / f"started-{stage}").touch()
    deadline = time.monotonic() + 120
    while len(list(shared.glob("started-*"))) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the other flow run did not start within 120 s: the runs were not concurrent")
        time.sleep(0.5)
    work = shared / f"ws-{stage}"  # its own clone: the two runs never share DVC's workspace lock
    subprocess.run(["git", "clone", "-q", project, str(work)], check=True)
    subprocess.run(["dvc", "repro", "-q", stage], cwd=work, check=True)
    subprocess.run(["dvc", "push", "-q", stage], cwd=work, check=True)
    # the returned id, not the active experiment: when two runs create it at once, MLflow 3.17's
    # set_experiment returns it to the loser without making it active (its run would land in Default)
    exp = mlflow.set_experiment("team-stack")
    with mlflow.start_run(experiment_id=exp.experiment_id, run_name=stage) as run:
        mlflow.set_tags({"prefect_flow_run_id": flow_run.id,
                         "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")})
        mlflow.log_metric("bytes", (work / f"{stage}.txt").stat().st_size)
        mlflow.log_artifact(str(work / f"{stage}.txt"))
    return run.info.run_id
"""

DEPLOY = """
import json
import sys
from pathlib import Path
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from pipeline.flows.deploy import Spec, deploy, ensure_pools

proj, shared = sys.argv[1:]
ensure_pools(2)  # the gpu pool's limit: one run per GPU, two GPUs
[name] = deploy(Path(proj), [Spec("probe", "flow.py:probe", "gpu")])
ids = [str(run_deployment(name, timeout=0, parameters={"stage": s, "project": proj, "shared": shared}).id)
       for s in ("a", "b")]
with get_client(sync_client=True) as client:
    limit = client.read_work_pool("gpu").concurrency_limit
print("RESULT", json.dumps({"ids": ids, "limit": limit}))
"""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _project(proj: Path, remote: Path, token: str) -> dict[str, str]:
    """A git + DVC project with two independent stages and the stack's remote as default; their outputs."""
    proj.mkdir()
    outs = {s: f"{s}-{token}\n" for s in ("a", "b")}
    stages = {s: {"cmd": f"echo {text.strip()} > {s}.txt", "outs": [f"{s}.txt"]} for s, text in outs.items()}
    (proj / "dvc.yaml").write_text(json.dumps({"stages": stages}))
    (proj / "flow.py").write_text(FLOW)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.org"],
                ["git", "config", "user.name", "ci"], [f"{BIN}/dvc", "init", "-q"],
                # what `python -m pipeline.stack env` tells a team to run
                [f"{BIN}/dvc", "remote", "add", "-d", "team", str(remote)],
                ["git", "add", "-A"], ["git", "commit", "-qm", "tiny project"]):
        res = _run(cmd, cwd=proj)
        assert res.returncode == 0, res.stderr
    return outs


def _let_postgres_through(tmp_path: Path, base: Path) -> None:
    """PostgreSQL refuses root; under root the stack runs it as `postgres`, which must pass through pytest's
    private temp folders (pytest makes them 0700 and takes the bit back at its next run)."""
    if os.geteuid() != 0:
        return
    for p in [tmp_path, *tmp_path.parents]:
        p.chmod(p.stat().st_mode | 0o001)
        if p == base:
            break


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(local.rsplit(":", 1)[0])
    return found


def _cmdlines() -> str:
    out = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(p.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return "\n".join(out)


@pytest.mark.timeout(420)
def test_team_stack_serves_two_concurrent_workers(tmp_path, tmp_path_factory):
    _let_postgres_through(tmp_path, tmp_path_factory.getbasetemp().parent)
    state, shared = tmp_path / "stack", tmp_path / "shared"
    shared.mkdir()
    base_env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(ROOT),
                "DVC_NO_ANALYTICS": "1"}
    t0 = time.monotonic()
    up = _run([sys.executable, "-m", "pipeline.stack", "up", "--dir", str(state)], env=base_env, timeout=300)
    startup = time.monotonic() - t0
    procs: list[subprocess.Popen] = []
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        print(up.stdout, f"stack start-up: {startup:.1f} s", sep="")
        stack = load(state)
        assert (state / "stack.json").stat().st_mode & 0o777 == 0o600
        # loopback only, and no secret on any command line
        for name, port in stack.ports.items():
            assert _listeners(port) == {"0100007F"}, (name, _listeners(port))
        cmdlines = _cmdlines()
        assert not [k for k, v in stack.secrets.items() if v.split(":")[-1] in cmdlines]
        # a client without the generated auth string is turned away
        import httpx

        assert httpx.post(f"{stack.prefect_api}/flow_runs/filter", json={}, timeout=10).status_code == 401

        outs = _project(tmp_path / "proj", stack.dvc_remote, secrets.token_hex(8))
        env = {**base_env, **stack.client_env(), "PREFECT_HOME": str(tmp_path / "prefect-client"),
               "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
        out = _run([sys.executable, "-c", DEPLOY, str(tmp_path / "proj"), str(shared)], env=env,
                   cwd=tmp_path / "proj", timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))[7:])
        assert result["limit"] == 2
        for gpu in ("0", "1"):  # one worker per GPU, as on a GPU host
            with (tmp_path / f"worker{gpu}.log").open("w") as fh:
                procs.append(subprocess.Popen([f"{BIN}/prefect", "worker", "start", "--pool", "gpu", "--limit", "1"],
                                              env={**env, "CUDA_VISIBLE_DEVICES": gpu}, cwd=tmp_path, stdout=fh,
                                              stderr=subprocess.STDOUT))

        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        logs = lambda: "\n".join((tmp_path / f"worker{g}.log").read_text()[-3000:] for g in "01")  # noqa: E731
        with temporary_settings({PREFECT_API_URL: stack.prefect_api,
                                 PREFECT_API_AUTH_STRING: stack.secrets["prefect_api"]}), \
                get_client(sync_client=True) as client:
            deadline = time.monotonic() + 240
            while True:
                runs = [client.read_flow_run(i) for i in result["ids"]]
                if all(r.state.is_final() for r in runs):
                    break
                assert all(p.poll() is None for p in procs), logs()
                assert time.monotonic() < deadline, f"{[r.state.type for r in runs]}\n{logs()}"
                time.sleep(2)
        assert [r.state.type.value for r in runs] == ["COMPLETED"] * 2, logs()
        (a, b) = runs
        assert a.start_time < b.end_time and b.start_time < a.end_time, "the two runs did not overlap"
        assert {r.work_pool_name for r in runs} == {"gpu"}

        # MLflow: both runs on the server, stored in its PostgreSQL database, artifacts through the proxy
        from mlflow.tracking import MlflowClient

        ml = MlflowClient(tracking_uri=stack.mlflow_uri)
        exp = ml.get_experiment_by_name("team-stack")
        mlruns = {r.info.run_name: r for r in ml.search_runs([exp.experiment_id])}
        assert sorted(mlruns) == ["a", "b"] and {r.info.status for r in mlruns.values()} == {"FINISHED"}
        assert {r.data.tags["prefect_flow_run_id"] for r in mlruns.values()} == set(result["ids"])
        assert sorted(r.data.tags["cuda_visible_devices"] for r in mlruns.values()) == ["0", "1"]
        for stage, run in mlruns.items():
            assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
            stored = stack.artifacts / exp.experiment_id / run.info.run_id / "artifacts" / f"{stage}.txt"
            assert stored.read_text() == outs[stage]
            local = ml.download_artifacts(run.info.run_id, f"{stage}.txt", str(tmp_path))
            assert Path(local).read_text() == outs[stage]
        import psycopg2

        with psycopg2.connect(stack.db_url("mlflow")) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs WHERE run_uuid = ANY(%s)", ([r.info.run_id for r in mlruns.values()],))
            assert cur.fetchone()[0] == 2
        with psycopg2.connect(stack.db_url("prefect")) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM flow_run WHERE id::text = ANY(%s) AND state_type = 'COMPLETED'",
                        (result["ids"],))
            assert cur.fetchone()[0] == 2

        # the remote holds exactly what the two runs pushed (DVC 3 layout: files/md5/<2>/<30>)
        pushed = sorted(str(p.relative_to(stack.dvc_remote)) for p in stack.dvc_remote.rglob("*") if p.is_file())
        md5 = {s: hashlib.md5(text.encode()).hexdigest() for s, text in outs.items()}
        assert pushed == sorted(f"files/md5/{h[:2]}/{h[2:]}" for h in md5.values())
    finally:
        stop_processes(procs)
        down = _run([sys.executable, "-m", "pipeline.stack", "down", "--dir", str(state)], env=base_env, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.split() == ["mlflow", "stopped", "prefect", "stopped", "postgres", "stopped"]
    for port in stack.ports.values():
        assert not _listeners(port)
    again = _run([sys.executable, "-m", "pipeline.stack", "down", "--dir", str(state)], env=base_env, timeout=60)
    assert again.returncode == 0 and "not running" in again.stdout, again.stdout + again.stderr
