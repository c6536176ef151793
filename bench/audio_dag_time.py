"""Wall time of the audio DAG from clean, stage by stage, with dvc.yaml's own commands run in a scratch folder.

    OMP_NUM_THREADS=1 .venv/bin/python bench/audio_dag_time.py [OVERLAY.yaml] [--work DIR]

The scratch folder gets the audio sections of params.yaml (merged with the overlay, e.g. the study profile);
each stage of the audio domain (the matrix stage once per variant × seed) runs in DAG order, one at a
time, as ``dvc repro`` would run them, and its wall time is printed. Nothing in the repository is written.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("audio_synthesize", "audio_features", "audio_train_gan", "audio_evaluate")


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def commands(params: dict) -> list[tuple[str, str]]:
    """(name, command) of every audio stage, the matrix stage expanded over run × seeds."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = []
    for stage in STAGES:
        cmd = dvc[stage]["cmd"]
        if "matrix" not in dvc[stage]:
            out.append((stage, cmd))
            continue
        t = params["audio_train_gan"]
        for v in t["run"]:
            for s in t["seeds"]:
                out.append((f"{stage}@{v}-{s}", cmd.replace("${item.variant}", v).replace("${item.seed}", str(s))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("overlay", nargs="?", type=Path)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--code", type=Path, default=ROOT, help="the code to run (default: this checkout)")
    args = ap.parse_args()
    params = {k: v for k, v in yaml.safe_load((ROOT / "params.yaml").read_text()).items() if k.startswith("audio_")}
    if args.overlay:
        over = yaml.safe_load(args.overlay.read_text()) or {}
        params = merge(params, {k: v for k, v in over.items() if k.startswith("audio_")})
    work = args.work or Path(tempfile.mkdtemp(prefix="audio_dag_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(args.code), "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    total = total_cpu = 0.0
    for name, cmd in commands(params):
        t0, u0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        res = subprocess.run(cmd.replace("python", sys.executable, 1), shell=True, cwd=work, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dt, cpu = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - u0
        if res.returncode:
            sys.exit(f"{name} failed:\n{res.stderr[-2000:]}")
        total, total_cpu = total + dt, total_cpu + cpu
        print(f"{name:45s} {dt:7.1f} s wall {cpu:7.1f} s user CPU", flush=True)
    print(f"{'total':45s} {total:7.1f} s wall {total_cpu:7.1f} s user CPU  (work folder: {work})")
    print((work / "reports/audio/report.md").read_text())


if __name__ == "__main__":
    main()
