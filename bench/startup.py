"""Import time of every stage module: what each DVC stage pays before it does any work.

    .venv/bin/python bench/startup.py [--repeats 3] [--top 8] [--json out.json] [stages.detection.crop ...]

Each module named in a ``dvc.yaml`` command (``python -m stages.<pipeline>.<stage>``) is imported in
``--repeats`` fresh processes (``python -c "import stages.x.y"``, the interpreter's own start included, as a
stage pays it), and the median wall time is reported, with the slowest and the median over stages.
``--top N`` also lists, per module, the N heaviest top-level packages from one ``python -X importtime``
run (cumulative microseconds of the first import of each package), to show where the time goes.

Goal (issue 22): no stage over 2.5 s on a quiet 2-core machine, and the median under 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MODULE = re.compile(r"python -m (stages\.[A-Za-z0-9_.]+)")


def stage_modules(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[str]:
    """The stage modules the DAG runs, in first-use order."""
    found: list[str] = []
    for stage in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        cmd = (stage.get("do") or stage)["cmd"]  # foreach/matrix stages keep it under "do"
        cmd = cmd if isinstance(cmd, str) else " ".join(cmd)
        for m in MODULE.findall(cmd):
            if m not in found:
                found.append(m)
    return found


def import_seconds(module: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, check=True)
    return time.perf_counter() - start


def heaviest(module: str, top: int) -> list[tuple[str, float]]:
    """The ``top`` top-level packages whose modules took the most import time (seconds, self time summed
    over each package's modules, from one ``python -X importtime`` run)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stderr
    totals: dict[str, float] = {}
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].split(":")[-1].strip().isdigit():
            continue
        pkg = parts[2].strip().split(".")[0]
        totals[pkg] = totals.get(pkg, 0.0) + int(parts[0].split(":")[-1]) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help="stage modules (default: every one in dvc.yaml)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=0, help="also list the N heaviest imported packages per module")
    ap.add_argument("--json", type=Path, help="write the medians here")
    args = ap.parse_args()
    modules = args.modules or stage_modules()
    import_seconds("pipeline")  # warm the file cache once, so the first module is not charged for it
    rows: dict[str, float] = {}
    print(f"{'stage module':34s} {'median s':>9s}  runs")
    for m in modules:
        runs = [import_seconds(m) for _ in range(args.repeats)]
        rows[m] = statistics.median(runs)
        extra = ""
        if args.top:
            extra = "  " + ", ".join(f"{p} {s:.2f}" for p, s in heaviest(m, args.top))
        print(f"{m:34s} {rows[m]:9.2f}  {' '.join(f'{r:.2f}' for r in runs)}{extra}", flush=True)
    worst = max(rows, key=rows.get)
    print(f"\nmedian over {len(rows)} stage modules: {statistics.median(rows.values()):.2f} s; "
          f"slowest: {worst} {rows[worst]:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
