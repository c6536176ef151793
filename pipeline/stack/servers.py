"""The team stack without Docker: PostgreSQL, Prefect server, MLflow server and a folder DVC remote.

    python -m pipeline.stack up --dir STATE_DIR      # start (first time: create), wait until healthy
    eval "$(python -m pipeline.stack env --dir STATE_DIR)"   # PREFECT_API_URL, MLFLOW_TRACKING_URI, ...
    python -m pipeline.stack status --dir STATE_DIR
    python -m pipeline.stack down --dir STATE_DIR    # stop, newest first; safe to repeat

Everything listens on 127.0.0.1 only, on free ports picked at the first ``up`` (or ``--*-port``) and kept
in ``STATE_DIR/stack.json`` (mode 0600) with the credentials, all generated with ``secrets``: a
PostgreSQL superuser, one role and database each for Prefect and MLflow, and the Prefect API's basic-auth
string. Each server gets only its own secret, in its environment (never on its command line). The same
services as ``docker/compose.yaml`` (postgres, prefect-server, mlflow), with a folder instead of MinIO
for MLflow's proxied artifacts (``mlflow/artifacts``) and for the DVC remote (``dvc-remote``, which a
team puts on a shared file system). Data persists across ``down``/``up``; delete STATE_DIR to start over.

PostgreSQL's binaries come from ``$SYNTHPIPE_PG_BIN``, ``PATH`` or ``/usr/lib/postgresql/*/bin``
(``make setup`` installs Debian's ``postgresql-15`` where none is found). PostgreSQL refuses to run as root: under
root its processes run as the ``postgres`` user, which must be able to reach STATE_DIR (``pipeline.stack.postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError, cli
from pipeline.stack import postgres
from pipeline.stack.postgres import HOST

STATE_FILE = "stack.json"
SERVERS = ("prefect", "mlflow")  # started in this order after postgres, stopped in reverse
# settings a user's shell may carry that must not leak into the servers (each gets only its own secret)
SCRUB = ("PREFECT_API_", "PREFECT_SERVER_", "PREFECT_HOME", "MLFLOW_", "PGPASSWORD", "PGUSER", "PGHOST", "PGPORT")


@dataclass(frozen=True)
class Stack:
    """Where one stack lives and how to reach it (``STATE_DIR/stack.json``)."""

    dir: Path
    ports: dict[str, int]
    secrets: dict[str, str]

    @property
    def prefect_api(self) -> str:
        return f"http://{HOST}:{self.ports['prefect']}/api"

    @property
    def mlflow_uri(self) -> str:
        return f"http://{HOST}:{self.ports['mlflow']}"

    @property
    def dvc_remote(self) -> Path:
        return self.dir / "dvc-remote"

    @property
    def artifacts(self) -> Path:
        return self.dir / "mlflow" / "artifacts"

    @property
    def pg(self) -> Path:
        return self.dir / "postgres"

    def db_url(self, role: str, driver: str = "postgresql") -> str:
        """``driver://role:password@127.0.0.1:port/role``: each server's database is named after its role."""
        return f"{driver}://{role}:{self.secrets[role]}@{HOST}:{self.ports['postgres']}/{role}"

    def client_env(self) -> dict[str, str]:
        """What a client (shell, worker, flow) exports to use the stack."""
        return {"PREFECT_API_URL": self.prefect_api, "PREFECT_API_AUTH_STRING": self.secrets["prefect_api"],
                "MLFLOW_TRACKING_URI": self.mlflow_uri, "SYNTHPIPE_DVC_REMOTE": str(self.dvc_remote)}


def load(state_dir: Path) -> Stack:
    """The stack recorded in ``state_dir`` (PipelineError if there is none)."""
    path = Path(state_dir).resolve() / STATE_FILE
    if not path.is_file():
        raise PipelineError(f"{state_dir}: no stack here (no {STATE_FILE}); start one with "
                            f"`python -m pipeline.stack up --dir {state_dir}`")
    data = json.loads(path.read_text())
    return Stack(path.parent, {k: int(v) for k, v in data["ports"].items()}, data["secrets"])


def _save(stack: Stack) -> None:
    tmp = stack.dir / f".{STATE_FILE}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"ports": stack.ports, "secrets": stack.secrets}, fh, indent=1)
    os.replace(tmp, stack.dir / STATE_FILE)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _writable_dir(state_dir: Path) -> Path:
    state_dir = Path(state_dir).resolve()
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = state_dir / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise PipelineError(f"{state_dir}: not a writable folder ({exc.strerror})") from None
    return state_dir


def _create(state_dir: Path, ports: dict[str, int | None]) -> Stack:
    """A new stack's state: ports (given or free), generated credentials, PostgreSQL initialised."""
    for name, port in ports.items():
        if port and not _port_free(port):
            raise PipelineError(f"port {port} on {HOST} ({name}) is busy; free it or pick another --{name}-port")
    picked = {name: port or _free_port() for name, port in ports.items()}
    if len(set(picked.values())) < len(picked):
        raise PipelineError(f"the ports must differ, got {picked}")
    # token_hex: URL-safe, so the passwords go into connection URLs as they are
    creds = {"admin": secrets.token_hex(24), "prefect": secrets.token_hex(24), "mlflow": secrets.token_hex(24),
             "prefect_api": f"synthpipe:{secrets.token_hex(24)}"}
    stack = Stack(state_dir, picked, creds)
    postgres.init(stack.pg, creds["admin"])
    _save(stack)
    return stack


def _command(stack: Stack, name: str) -> tuple[list[str], dict[str, str]]:
    """Command line and the environment additions of one server (its secret goes in the environment)."""
    bin_dir = Path(sys.executable).parent
    port = str(stack.ports[name])
    if name == "prefect":
        return ([str(bin_dir / "prefect"), "server", "start", "--host", HOST, "--port", port],
                {"PREFECT_HOME": str(stack.dir / "prefect"),
                 "PREFECT_API_DATABASE_CONNECTION_URL": stack.db_url("prefect", "postgresql+asyncpg"),
                 "PREFECT_SERVER_API_AUTH_STRING": stack.secrets["prefect_api"],
                 "PREFECT_UI_API_URL": stack.prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return ([str(bin_dir / "mlflow"), "server", "--host", HOST, "--port", port, "--workers", "1",
             "--serve-artifacts", "--artifacts-destination", str(stack.artifacts),
             "--default-artifact-root", "mlflow-artifacts:/", "--allowed-hosts", f"{HOST}:{port},localhost:{port}"],
            {"MLFLOW_BACKEND_STORE_URI": stack.db_url("mlflow", "postgresql+psycopg2")})


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc), None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _running(stack: Stack, name: str) -> int | None:
    """The pid of our server ``name`` if it runs (the pid file's start time guards against a reused pid)."""
    try:
        pid, started = (stack.dir / f"{name}.pid").read_text().split()
    except (OSError, ValueError):
        return None
    return int(pid) if _start_time(int(pid)) == started else None


def _spawn(stack: Stack, name: str) -> subprocess.Popen:
    if not _port_free(stack.ports[name]):
        raise PipelineError(f"port {stack.ports[name]} on {HOST} ({name}) is busy; free it, or start a new "
                            f"stack in another --dir with --{name}-port")
    cmd, extra = _command(stack, name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)} | extra
    with (stack.dir / f"{name}.log").open("a") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=stack.dir / name, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # its own group: down stops all
    (stack.dir / f"{name}.pid").write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(stack: Stack, procs: dict[str, subprocess.Popen], t0: float, timeout: float) -> None:
    urls = {"prefect": f"{stack.prefect_api}/health", "mlflow": f"{stack.mlflow_uri}/health"}
    waiting = dict(procs)
    while waiting:
        for name, proc in list(waiting.items()):
            if proc.poll() is not None:
                tail = (stack.dir / f"{name}.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise PipelineError(f"{name} server exited during start-up (status {proc.returncode}): "
                                    f"{' '.join(tail)}; log: {stack.dir / f'{name}.log'}")
            if _healthy(urls[name]):
                print(f"{name:8s} ready on {urls[name].rsplit('/', 1)[0]} ({time.monotonic() - t0:.1f} s)", flush=True)
                del waiting[name]
        if waiting and time.monotonic() - t0 > timeout:
            raise PipelineError(f"{', '.join(waiting)} not healthy {timeout:.0f} s after start; "
                                f"logs: {', '.join(str(stack.dir / f'{n}.log') for n in waiting)}")
        time.sleep(0.5)


def up(state_dir: Path, ports: dict[str, int | None] | None = None, timeout: float = 180) -> Stack:
    """Start the stack in ``state_dir`` (creating it on first use); returns once every server is healthy."""
    t0 = time.monotonic()
    bin_dir = postgres.bin_dir()
    state_dir = _writable_dir(state_dir)
    fresh = not (state_dir / STATE_FILE).is_file()
    if fresh:
        stack = _create(state_dir, {"postgres": None, "prefect": None, "mlflow": None, **(ports or {})})
    else:
        stack = load(state_dir)
        if given := {k: v for k, v in (ports or {}).items() if v and v != stack.ports[k]}:
            raise PipelineError(f"{state_dir} already has its ports {stack.ports}; --*-port {given} cannot change "
                                f"them (clients keep the old URLs): use another --dir")
    print(f"stack    {state_dir} (PostgreSQL from {bin_dir})", flush=True)
    stack.dvc_remote.mkdir(exist_ok=True)
    stack.artifacts.mkdir(parents=True, exist_ok=True)
    (state_dir / "prefect").mkdir(exist_ok=True)
    down_now = ["postgres"] * (not postgres.running(stack.pg)) + [n for n in SERVERS if not _running(stack, n)]
    for name in down_now:  # before anything starts
        if not _port_free(stack.ports[name]):
            raise PipelineError(f"port {stack.ports[name]} on {HOST} ({name}) is busy; free it, or start a new "
                                f"stack in another --dir with --{name}-port")
    started: list[str] = []
    try:
        if "postgres" in down_now:
            started.append("postgres")
        postgres.start(stack.pg, stack.ports["postgres"], stack.secrets["admin"],
                       {r: stack.secrets[r] for r in SERVERS})
        print(f"postgres ready on {HOST}:{stack.ports['postgres']} ({time.monotonic() - t0:.1f} s)", flush=True)
        procs = {}
        for name in SERVERS:
            if _running(stack, name):
                print(f"{name:8s} already running", flush=True)
            else:
                started.append(name)
                procs[name] = _spawn(stack, name)
        _wait(stack, procs, t0, timeout)
    except BaseException:
        _stop(stack, started, quiet=True)  # what this call started does not stay half-started
        raise
    print(f"stack    up in {time.monotonic() - t0:.1f} s; `python -m pipeline.stack env --dir {state_dir}` "
          f"prints the variables to export", flush=True)
    return stack


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _stop_group(pid: int, grace: float = 20) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                return
            time.sleep(0.2)


def down(state_dir: Path, quiet: bool = False) -> None:
    """Stop the servers: mlflow, prefect, then PostgreSQL (fast shutdown). Nothing running is not an error."""
    state_dir = Path(state_dir).resolve()
    if not (state_dir / STATE_FILE).is_file():
        if not quiet:
            print(f"stack    nothing to stop in {state_dir}")
        return
    _stop(load(state_dir), ["postgres", *SERVERS], quiet)


def _stop(stack: Stack, names: list[str], quiet: bool) -> None:
    for name in reversed(SERVERS):
        if name not in names:
            continue
        pid = _running(stack, name)
        if pid:
            _stop_group(pid)
        (stack.dir / f"{name}.pid").unlink(missing_ok=True)
        if not quiet:
            print(f"{name:8s} {'stopped' if pid else 'not running'}", flush=True)
    if "postgres" in names:
        running = postgres.stop(stack.pg)
        if not quiet:
            print(f"postgres {'stopped' if running else 'not running'}", flush=True)


def env_lines(stack: Stack) -> list[str]:
    """``export`` lines for a shell, and how to point a DVC project at the remote."""
    lines = [f"export {k}='{v}'" for k, v in stack.client_env().items()]
    return lines + [f"# DVC: dvc remote add -d team {stack.dvc_remote}   (once per project; a team uses a shared "
                    "folder, e.g. on NFS)"]


def status(stack: Stack) -> list[str]:
    rows = [f"postgres {'running' if postgres.running(stack.pg) else 'stopped'} {HOST}:{stack.ports['postgres']}"]
    for name, url in (("prefect", stack.prefect_api), ("mlflow", stack.mlflow_uri)):
        pid = _running(stack, name)
        rows.append(f"{name:8s} {f'running (pid {pid})' if pid else 'stopped'} {url}")
    return rows + [f"dvc      remote folder {stack.dvc_remote}"]


@cli
def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m pipeline.stack", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("up", "down", "env", "status"))
    ap.add_argument("--dir", type=Path, required=True, help="state folder: data, logs, credentials (0600)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds `up` waits for the servers")
    for name in ("postgres", *SERVERS):
        ap.add_argument(f"--{name}-port", type=int, help=f"{name} port on {HOST} at the first `up` (default: free)")
    args = ap.parse_args()
    if args.command == "up":
        up(args.dir, {n: getattr(args, f"{n}_port") for n in ("postgres", *SERVERS)}, args.timeout)
    elif args.command == "down":
        down(args.dir)
    else:
        print("\n".join((env_lines if args.command == "env" else status)(load(args.dir))))
