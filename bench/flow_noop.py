"""What a flow run with nothing to do costs: the detection flow's CLI on an up-to-date project.

    .venv/bin/python bench/flow_noop.py [--repeats 3] [--phases] [--project detection|small] [--files 30]

The real detection project has no data on this machine, so the project is a stand-in
(``--project detection``, the default): a git + DVC copy of this checkout's ``dvc.yaml``, ``params.yaml``,
``pipeline/`` and ``stages/`` (every pipeline, 44 stages, the detection flow plans 20+ of them) where
``dvc repro`` ran each stage's command with ``python`` resolved to a stand-in that writes the stage's
declared outputs (``--files`` files of 1 KB per output folder, the sub-folders other stages read, and
the metrics/plots files). So dvc.yaml, dvc.lock (~95 KB, as after ``make demo``), params and the
code-folder dependencies DVC hashes are the real ones; only the data folders are small (real ones cost
more to hash, in ``exp save``'s commits most). ``--project small`` is a toy DAG of ``--stages`` stages.

Timed, as a user runs it, ``python -m pipeline.flows detection --root <project>`` from the project root
(process start and imports included), median of ``--repeats`` runs after one warm-up run (which
creates the MLflow and Prefect databases, as ``make demo`` and a first flow run have on a real checkout):

* with a running server: ``prefect server start --host 127.0.0.1 --port <free port>`` started here with
  ``PREFECT_HOME`` in a temporary folder, and ``PREFECT_API_URL`` pointing at it;
* with the temporary server: ``PREFECT_API_URL`` unset, so the flow starts and stops its own.

The DVC experiments each variant left behind (``dvc exp list``) are counted. ``--phases`` also times the
pieces of one no-op run in this process against the running server (planning, the up-to-date check,
the per-stage tasks, the MLflow parent run, the DVC experiment).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _git_dvc_init(root: Path, env: dict[str, str]) -> None:
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "b@example.org"],
                ["git", "config", "user.name", "bench"], [str(BIN / "dvc"), "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "bench"], [str(BIN / "dvc"), "repro", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "repro"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=env)


def small_project(root: Path, n: int) -> Path:
    """``n`` stages: s0 → s1 → (s2 … s<n-2>, each from s1) → report (from all of them); one small file each."""
    root.mkdir(parents=True)
    names = [f"s{i}" for i in range(n - 1)]
    deps = {"s0": [], "s1": ["s0"], **{s: ["s1"] for s in names[2:]}, "report": names[2:] or names[-1:]}
    stages = {}
    for name, up in deps.items():
        stages[name] = {"cmd": f"python step.py {name} " + " ".join(f"out/{d}.txt" for d in up),
                        "deps": ["step.py", *[f"out/{d}.txt" for d in up]], "params": ["report.detections"],
                        "outs": [f"out/{name}.txt"]}
    (root / "step.py").write_text("import os, sys\nos.makedirs('out', exist_ok=True)\n"
                                  "open(f'out/{sys.argv[1]}.txt', 'w').write(sys.argv[1])\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / "params.yaml").write_text(yaml.safe_dump({"report": {"detections": 1}}))
    (root / ".gitignore").write_text("/out/\n")
    _git_dvc_init(root, _env())
    return root


FAKE_STAGE = """import json, os, shlex, sys
spec = json.load(open(os.environ["BENCH_FAKE_OUTS"]))[shlex.join(sys.argv[1:])]
for path, kind, children in spec:
    if kind == "file":
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        open(path, "w").write('{"value": 1}' if path.endswith(".json") else "step,value\\n0,1\\n")
        continue
    for folder in [path, *children]:
        os.makedirs(folder, exist_ok=True)
        for i in range(int(os.environ["BENCH_FAKE_FILES"])):
            open(os.path.join(folder, f"{i:04d}.bin"), "wb").write(bytes([i % 256]) * 1024 + folder.encode())
"""


def detection_project(root: Path, files: int) -> Path:
    """This checkout's dvc.yaml, params.yaml, pipeline/ and stages/, every stage brought up to date by a stand-in.

    ``dvc repro`` runs each stage's command with ``python`` resolved to a stand-in that writes the stage's
    declared outputs (``files`` files of 1 KB per output folder, and the sub-folders other stages depend
    on), so dvc.yaml, dvc.lock, params and the code-folder dependencies are the real project's.
    """
    root.mkdir(parents=True)
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, root / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=root, check=True)
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        top = Path(repo.root_dir)
        outs = [(s, o, Path(o.fs_path).relative_to(top)) for s in repo.index.stages for o in s.outs]
        deps = [Path(d.fs_path).relative_to(top) for s in repo.index.stages for d in s.deps if hasattr(d, "fs_path")]
        spec: dict[str, list] = {}
        for stage in repo.index.stages:
            entries = []
            for s, o, path in outs:
                if s is stage:
                    kind = "file" if o.metric or o.plot else "dir"
                    entries.append([str(path), kind, sorted({str(d) for d in deps if path in d.parents})])
            spec[shlex.join(shlex.split(stage.cmd)[1:])] = entries
    finally:
        repo.close()
    shim = root.parent / f"{root.name}-shim"
    shim.mkdir()
    (shim / "fake_stage.py").write_text(FAKE_STAGE)
    (shim / "outs.json").write_text(json.dumps(spec))
    (shim / "python").write_text(f"#!/bin/sh\nexec {sys.executable} {shim / 'fake_stage.py'} \"$@\"\n")
    (shim / "python").chmod(0o755)
    env = _env(BENCH_FAKE_OUTS=str(shim / "outs.json"), BENCH_FAKE_FILES=str(files))
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    for cmd in (["git", "config", "user.email", "b@example.org"], ["git", "config", "user.name", "bench"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "bench"], [str(BIN / "dvc"), "repro", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "repro"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=env)
    return root


def _env(**extra: str | None) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("PREFECT_API_URL", None)
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flow_cli(root: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pipeline.flows", "detection", "--root", str(root)],
                         capture_output=True, text=True, env=env, cwd=root)
    took = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"flow failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return took


def experiments(root: Path) -> int:
    out = subprocess.run([str(BIN / "dvc"), "exp", "list", "--name-only"], cwd=root, capture_output=True,
                         text=True, env=_env(), check=True)
    return len(out.stdout.split())


def start_server(home: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=_env(PREFECT_HOME=str(home)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url, time.perf_counter() - start
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.perf_counter() - start > 300:
            raise SystemExit("prefect server did not start")
        time.sleep(0.2)


def phases(root: Path, url: str, home: Path, mlflow_uri: str) -> None:
    """One no-op run in this process with each piece of orchestrate() timed."""
    os.environ.update(_env(PREFECT_API_URL=url, PREFECT_HOME=str(home), MLFLOW_TRACKING_URI=mlflow_uri))
    sys.path.insert(0, str(ROOT))  # this checkout's pipeline/, as the CLI runs get through PYTHONPATH
    from prefect import flow

    from pipeline import tracking
    from pipeline.flows import common, dag

    took: dict[str, float] = {}

    def timer(name, fn):
        def wrapped(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                add(name, start)
        return wrapped

    def add(name: str, start: float) -> None:
        took[name] = took.get(name, 0.0) + time.perf_counter() - start

    @contextlib.contextmanager
    def parent_run(*a, **k):
        start = time.perf_counter()
        cm = tracking.pipeline_run(*a, **k)
        run_id = cm.__enter__()
        add("MLflow parent run (import, open, close)", start)
        try:
            yield run_id
        finally:
            start = time.perf_counter()
            cm.__exit__(None, None, None)
            add("MLflow parent run (import, open, close)", start)

    common.pipeline_run = parent_run
    common.log_to_run = timer("MLflow log_to_run", tracking.log_to_run)
    dag.plan = timer("dag.plan (one Repo)", dag.plan)
    common.run_plan = timer("run_plan (the stage tasks)", common.run_plan)
    dag.save_experiment = timer("save_experiment (dvc exp save)", dag.save_experiment)
    for name in ("up_to_date",):
        if hasattr(dag, name):
            setattr(dag, name, timer(f"dag.{name} (one Repo a call)", getattr(dag, name)))

    @flow(name="detection")
    def detection():
        return common.orchestrate("detection", str(root), None, None, True,
                                  lambda r: common.run_plan(r, dag.plan(r, ["report"])))

    start = time.perf_counter()
    detection()
    total = time.perf_counter() - start
    print(f"  phases of one no-op flow run in-process (running server): {total:.1f} s")
    for name, t in took.items():
        print(f"    {name:48s} {t:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", choices=["detection", "small"], default="detection")
    ap.add_argument("--files", type=int, default=30, help="detection: files per output folder")
    ap.add_argument("--stages", type=int, default=20, help="small: number of stages")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--phases", action="store_true")
    args = ap.parse_args()

    def make_project(root: Path) -> Path:
        return detection_project(root, args.files) if args.project == "detection" else small_project(root, args.stages)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        home_server, home_temp = tmp_path / "prefect-server", tmp_path / "prefect-temp"
        proc, url, server_start = start_server(home_server)
        try:
            rows: dict[str, list[float]] = {}
            variants = {"running server": _env(PREFECT_API_URL=url, PREFECT_HOME=str(home_server),
                                               MLFLOW_TRACKING_URI=mlflow_uri),
                        "temporary server": _env(PREFECT_HOME=str(home_temp), MLFLOW_TRACKING_URI=mlflow_uri)}
            exps = {}
            for name, env in variants.items():
                root = make_project(tmp_path / name.replace(" ", "-"))
                first = flow_cli(root, env)  # creates the databases
                rows[name] = [flow_cli(root, env) for _ in range(args.repeats)]
                exps[name] = experiments(root)
                print(f"{name}: warm-up run {first:.1f} s", flush=True)
            what = (f"the detection DAG's {args.files}-files-a-folder stand-in" if args.project == "detection"
                    else f"{args.stages} small stages")
            print(f"no-op `python -m pipeline.flows detection` on {what}, all up to date, median of "
                  f"{args.repeats} (after one warm-up run); `prefect server start` took {server_start:.1f} s")
            for name, values in rows.items():
                print(f"  {name:18s} {statistics.median(values):6.1f} s  (runs: "
                      f"{', '.join(f'{v:.1f}' for v in values)}; DVC experiments left: {exps[name]} "
                      f"after {args.repeats + 1} runs)")
            if args.phases:
                phases(make_project(tmp_path / "phases"), url, home_server, mlflow_uri)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
