"""One PostgreSQL cluster in ``STATE_DIR/postgres`` for the team stack: find the binaries, initdb, start,
roles, stop. TCP on 127.0.0.1 only, password (scram-sha-256) for every role, the superuser's included.

PostgreSQL refuses to run as root: under root its processes run as the ``postgres`` user (Debian's
package creates it), which must be able to reach the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pipeline.errors import PipelineError

HOST = "127.0.0.1"
ADMIN = "synthpipe_admin"
TOOLS = ("initdb", "pg_ctl", "postgres", "psql")
DEBIAN = Path("/usr/lib/postgresql")  # Debian's postgresql-NN packages: /usr/lib/postgresql/NN/bin
# a user's shell settings that must not reach the cluster's tools
SCRUB = ("PG", "PREFECT_", "MLFLOW_")


def bin_dir() -> Path:
    """The folder holding PostgreSQL's server binaries: $SYNTHPIPE_PG_BIN, PATH, then the newest Debian one."""
    candidates = [os.environ.get("SYNTHPIPE_PG_BIN", "")]
    if found := shutil.which("pg_ctl"):
        candidates.append(str(Path(found).resolve().parent))
    candidates += sorted((str(p) for p in DEBIAN.glob("*/bin")),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                         reverse=True)
    for c in filter(None, candidates):
        if all(os.access(Path(c) / tool, os.X_OK) for tool in TOOLS):
            return Path(c)
    raise PipelineError("PostgreSQL's server binaries (initdb, pg_ctl, postgres, psql) were not found in "
                        "$SYNTHPIPE_PG_BIN, on PATH or in /usr/lib/postgresql/*/bin; install Debian's "
                        "postgresql-15 (`make setup` does, as root) or set SYNTHPIPE_PG_BIN")


def service_user() -> pwd.struct_passwd | None:
    """The unprivileged user PostgreSQL runs as under root, else None (the caller)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PipelineError("running as root: PostgreSQL refuses root and there is no `postgres` user; "
                            "run the stack as a normal user") from None


def _run(pg: Path, tool: str, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    user = service_user()
    ids = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)} | {"LC_ALL": "C"} | (env or {})
    res = subprocess.run([str(bin_dir() / tool), *args], capture_output=True, text=True, env=clean, cwd="/",
                         **ids, **kw)
    if res.returncode:
        out = " | ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
        raise PipelineError(f"postgres: `{tool}` failed (exit {res.returncode}): {out}; log: {pg / 'postgres.log'}")
    return res


def init(pg: Path, admin_password: str) -> None:
    """A new cluster in ``pg/data`` (anything half-made by an interrupted first start is removed)."""
    user = service_user()
    shutil.rmtree(pg, ignore_errors=True)
    pg.mkdir(mode=0o700)
    if user:
        pg.parent.chmod(0o711)  # the postgres user only passes through STATE_DIR; its files keep their modes
        os.chown(pg, user.pw_uid, user.pw_gid)
        if subprocess.run(["test", "-w", str(pg)], user=user.pw_uid, group=user.pw_gid, extra_groups=[]).returncode:
            raise PipelineError(f"{pg.parent}: the `postgres` user cannot reach this folder (PostgreSQL refuses "
                                f"to run as root); give its parent folders search permission (chmod o+x) or "
                                f"pick a folder under /srv")
    pwfile = pg / "initdb.pw"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(admin_password + "\n")
    if user:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    try:
        _run(pg, "initdb", "-D", str(pg / "data"), "-U", ADMIN, f"--pwfile={pwfile}", "--auth=scram-sha-256",
             "-E", "UTF8", "--locale=C")
    finally:
        pwfile.unlink()
    with (pg / "data" / "postgresql.conf").open("a") as fh:
        # TCP on the loopback only; no Unix socket (its path would outgrow 107 bytes in a deep STATE_DIR)
        fh.write(f"\n# pipeline.stack\nlisten_addresses = '{HOST}'\nunix_socket_directories = ''\n")


def start(pg: Path, port: int, admin_password: str, roles: dict[str, str]) -> None:
    """Start the cluster (unless it runs); the first time, one role and one database per ``roles`` entry."""
    if not running(pg):
        _run(pg, "pg_ctl", "start", "-D", str(pg / "data"), "-l", str(pg / "postgres.log"), "-w", "-t", "60",
             "-o", f"-p {port}")
    marker = pg / "roles-created"
    if marker.exists():
        return
    # each server owns only its own database; passwords go in on stdin, not on a command line
    sql = "".join(f"CREATE ROLE {r} LOGIN PASSWORD '{pw}';\nCREATE DATABASE {r} OWNER {r};\n"
                  f"REVOKE ALL ON DATABASE {r} FROM PUBLIC;\n" for r, pw in roles.items())
    _run(pg, "psql", "-h", HOST, "-p", str(port), "-U", ADMIN, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q",
         "-f", "-", input=sql, env={"PGPASSWORD": admin_password})
    marker.touch()


def pid(pg: Path) -> int | None:
    """The postmaster's pid from its pid file, if that process runs (read as the caller: root needs no
    access for the `postgres` user, which a later chmod of a parent folder may have taken away)."""
    try:
        found = int((pg / "data" / "postmaster.pid").read_text().split()[0])
        state = Path(f"/proc/{found}/stat").read_text().rsplit(")", 1)[1].split()[0]
        alive = state != "Z" and b"postgres" in Path(f"/proc/{found}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return found if alive else None


def running(pg: Path) -> bool:
    return pid(pg) is not None


def stop(pg: Path, timeout: float = 60) -> bool:
    """Fast shutdown (SIGINT, what `pg_ctl stop -m fast` sends), then immediate (SIGQUIT) if it hangs.
    Returns whether it was running."""
    was = pid(pg)
    current = was
    for sig in (signal.SIGINT, signal.SIGQUIT):
        if current is None:
            break
        os.kill(current, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid(pg) == current:
            time.sleep(0.2)
        current = pid(pg)
    return was is not None
