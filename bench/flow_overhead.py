"""Prefect overhead per DVC stage: the same chain of N trivial stages run by `dvc repro` and by a flow.

    .venv/bin/python bench/flow_overhead.py [--stages 20] [--repeats 3]

Each stage is a shell `echo` (milliseconds), so what is timed is the orchestration: DVC's own per-stage
work (hashing, lock file, run-cache) is in every column; the flow column adds a Prefect task per stage
plus one DVC Repo per stage. Timed: a first run (all stages run) and a second one (all skipped), for
`dvc repro` (the CLI, includes its ~1 s start-up), `Repo.reproduce()` in one process, and the task loop of
the flows (`run_plan`) inside a flow run on a temporary Prefect server started beforehand (its start-up and
the flow's fixed MLflow/experiment work are reported separately).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def make_project(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    stages = {}
    for i in range(n):
        dep = [f"out/s{i - 1}.txt"] if i else []
        stages[f"s{i}"] = {"cmd": f"mkdir -p out && echo {i} > out/s{i}.txt", "deps": dep, "outs": [f"out/s{i}.txt"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / "params.yaml").write_text("{}\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "b@example.org"],
                ["git", "config", "user.name", "bench"], [str(BIN / "dvc"), "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=root, check=True, env=env, capture_output=True)
    return root


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = args.stages
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"

    from prefect import flow
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from pipeline.flows import dag
    from pipeline.flows.common import orchestrate, run_plan

    @flow(name="bench")
    def loop(root: str) -> float:
        planned = dag.plan(root)
        return timed(lambda: run_plan(Path(root), planned))

    @flow(name="bench-full")
    def full(root: str) -> dict[str, str]:
        return orchestrate("bench", root, None, None, False, lambda r: run_plan(r, dag.plan(r)))

    rows: dict[str, list[float]] = {}
    settings = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 180}
    with tempfile.TemporaryDirectory() as tmp, temporary_settings(settings):
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        start = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=180):
            server = time.perf_counter() - start
            loop(str(make_project(Path(tmp) / "warm", 2)))
            for r in range(args.repeats):
                cli = make_project(Path(tmp) / f"cli{r}", n)
                def repro(root=cli):
                    subprocess.run([str(BIN / "dvc"), "repro", "-q"], cwd=root, check=True)

                rows.setdefault("dvc repro (CLI), all run", []).append(timed(repro))
                rows.setdefault("dvc repro (CLI), all skipped", []).append(timed(repro))
                api = make_project(Path(tmp) / f"api{r}", n)

                def reproduce(root=api):
                    os.chdir(root)
                    repo = dag.open_repo(root)
                    repo.reproduce()
                    repo.close()

                rows.setdefault("Repo.reproduce(), all run", []).append(timed(reproduce))
                rows.setdefault("Repo.reproduce(), all skipped", []).append(timed(reproduce))
                fl = make_project(Path(tmp) / f"flow{r}", n)
                rows.setdefault("flow task loop, all run", []).append(loop(str(fl)))
                rows.setdefault("flow task loop, all skipped", []).append(loop(str(fl)))
                whole = make_project(Path(tmp) / f"whole{r}", n)
                rows.setdefault("whole flow run (+ MLflow parent, plan), all run", []).append(
                    timed(lambda root=whole: full(str(root))))
            os.chdir(tmp)
    print(f"{n} stages, {args.repeats} repeats, median seconds (per stage); temporary Prefect server start "
          f"{server:.1f} s (not included)")
    for name, values in rows.items():
        med = statistics.median(values)
        print(f"  {name:52s} {med:7.2f} s  ({med / n * 1000:6.0f} ms/stage)")
    base_run = statistics.median(rows["Repo.reproduce(), all run"])
    base_skip = statistics.median(rows["Repo.reproduce(), all skipped"])
    print(f"Prefect overhead vs Repo.reproduce(): "
          f"{(statistics.median(rows['flow task loop, all run']) - base_run) / n * 1000:.0f} ms/stage (run), "
          f"{(statistics.median(rows['flow task loop, all skipped']) - base_skip) / n * 1000:.0f} ms/stage (skipped)")


if __name__ == "__main__":
    main()
