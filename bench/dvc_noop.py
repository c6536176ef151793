"""Where a second ``dvc repro`` (nothing to do) spends its time, and what a DVC-side change would give.

    .venv/bin/python bench/dvc_noop.py [--repeats 5] [--files 30] [--profile]

The project is bench/flow_noop.py's stand-in for this checkout: the real ``dvc.yaml``, ``params.yaml``,
``dvc.lock`` and code dependencies, every stage brought up to date by a stand-in command, small data
folders. Timed, interleaved, median of ``--repeats`` fresh processes after one warm-up each:

* ``dvc repro``: DVC as installed;
* ``dvc repro, params read once``: the same DVC in a process where ``read_param_file`` parses each
  params file once per process and looks each key up directly. DVC itself parses ``params.yaml`` once
  per stage with ruamel and finds every listed key with ``dpath.get``, which walks the whole params tree.
  This variant exists only in this bench, to measure what that change in DVC would give; the project
  runs DVC unchanged.

``--profile`` also runs one plain no-op under cProfile and prints the share of the biggest pieces.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow_noop import BIN, _env, detection_project  # noqa: E402

PARAMS_READ_ONCE = r'''
import os, sys
import dvc.dependency.param as P
from dvc.utils.serialize import load_path

parsed, dvc_read = {}, P.read_param_file

def read_param_file(fs, path, key_paths=None, flatten=False, **kwargs):
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in parsed:
        parsed[key] = load_path(path, fs, **kwargs)
    if not key_paths or not flatten or any(c in k for k in key_paths for c in "*?["):
        return dvc_read(fs, path, key_paths, flatten, **kwargs)
    found = {}
    for k in key_paths:
        node = parsed[key]
        try:
            for part in k.split("."):
                node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            continue
        found[k] = node
    return found

P.read_param_file = read_param_file
from dvc.cli import main
sys.exit(main(sys.argv[1:]))
'''

PIECES = (("dvc/dependency/param.py", "read_param_file"), ("dpath/__init__.py", "get"),
          ("dvc/utils/serialize/__init__.py", "load_path"), ("dvc/repo/reproduce.py", "collect_stages"),
          ("dvc/output.py", "status"))  # matched by file and function, not line, so another DVC still matches


def run(cmd: list[str], root: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if out.returncode or "Running stage" in out.stdout:
        raise SystemExit(f"{' '.join(cmd[-2:])} was not a no-op (exit {out.returncode}):\n{out.stdout[-2000:]}"
                         f"{out.stderr[-2000:]}")
    return took


def profile(root: Path, env: dict[str, str], tmp: Path) -> None:
    import pstats

    dump = tmp / "noop.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(dump), str(BIN / "dvc"), "repro"], cwd=root,
                   env=env, check=True, capture_output=True)
    stats = pstats.Stats(str(dump))
    total = max(v[3] for v in stats.stats.values())
    print(f"cProfile of one plain no-op ({total:.2f} s under the profiler): cumulative share")
    for (path, line, fn), (_, calls, _, cum, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][3]):
        if (piece := next(((f, n) for f, n in PIECES if path.endswith(f) and fn == n), None)):
            print(f"  {piece[0] + ':' + piece[1]:55s} {calls:6d} calls  {cum / total:5.1%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--files", type=int, default=30, help="files per output folder in the stand-in")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = detection_project(tmp_path / "project", args.files)
        shim = tmp_path / "params_read_once.py"
        shim.write_text(PARAMS_READ_ONCE)
        env = _env()
        variants = {"dvc repro": [str(BIN / "dvc"), "repro"],
                    "dvc repro, params read once": [sys.executable, str(shim), "repro"]}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for cmd in variants.values():
            run(cmd, root, env)
        for _ in range(args.repeats):
            for name, cmd in variants.items():
                times[name].append(run(cmd, root, env))
        stages = subprocess.run([str(BIN / "dvc"), "stage", "list", "--all", "--name-only"], cwd=root, env=env,
                                capture_output=True, text=True, check=True).stdout.split()
        print(f"second `dvc repro` on the stand-in ({len(stages)} stages), median of {args.repeats}, interleaved")
        for name, values in times.items():
            print(f"  {name:30s} {statistics.median(values):5.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
        if args.profile:
            profile(root, env, tmp_path)


if __name__ == "__main__":
    main()
