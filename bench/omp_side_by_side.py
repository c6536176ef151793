"""Two CPU training processes side by side, with OpenMP's default wait policy and with ``PASSIVE``.

    .venv/bin/python bench/omp_side_by_side.py [--steps 40] [--size 96] [--batch 8] [--rounds 2]

Why: ``--jobs 2`` runs two stages at once, each with torch's default thread count (the machine's cores).
While an OpenMP thread waits at a barrier, the default policy lets it spin before it sleeps; with more
threads than cores the spinning thread holds the core its peer needs. The slots therefore set
``OMP_WAIT_POLICY=PASSIVE`` (``pipeline/flows/slots.py``). This bench measures what that buys.

Each worker is a fresh process that trains the demo's detector (SqueezeDet, width 0.5, the demo's patch
size and batch) for ``--steps`` Adam steps from seed 0 on random data, and prints its wall time and a
digest of the trained weights. Rows: one worker alone (default policy, then PASSIVE), two at once with
the default policy, two at once with PASSIVE; the median over ``--rounds``. The digests must all agree:
the wait policy changes who sleeps, not the arithmetic (the thread count is the same).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = [[7.0, 7.3], [9.3, 9.1], [12.1, 12.6], [15.0, 16.5], [19.0, 14.5]]


def worker(steps: int, size: int, batch: int) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from pipeline.detection.detector.squeezedet import SqueezeDet
    from pipeline.detection.detector.training import squeezedet_loss

    torch.manual_seed(0)
    model = SqueezeDet(1, ANCHORS, (size, size), 0.5, stride=8, norm=True)  # the demo: width 0.5, stride 8, BN
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(batch, 3, size, size) * 2 - 1
    gts = [torch.tensor([[30.0, 30.0, 42.0, 41.0]])] * batch
    labels = [torch.zeros(1, dtype=torch.long)] * batch
    start = time.perf_counter()
    for _ in range(steps):
        loss, _ = squeezedet_loss(model(x), model.anchors_xyxy, gts, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    took = time.perf_counter() - start
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    print(f"{took:.3f} {digest[:16]}")


def launch(n: int, policy: str | None, args: argparse.Namespace) -> list[tuple[float, str]]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps), "--size", str(args.size),
           "--batch", str(args.batch)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            sys.exit(f"worker failed with exit code {p.returncode}")
        took, digest = stdout.split()
        out.append((float(took), digest))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.steps, args.size, args.batch)
        return
    rows = {"alone, default": (1, None), "alone, PASSIVE": (1, "PASSIVE"),
            "two at once, default": (2, None), "two at once, PASSIVE": (2, "PASSIVE")}
    times: dict[str, list[float]] = {k: [] for k in rows}
    digests = set()
    for _ in range(args.rounds):  # rounds interleave the rows, so a load change hits all of them
        for name, (n, policy) in rows.items():
            got = launch(n, policy, args)
            times[name].append(max(t for t, _ in got))
            digests |= {d for _, d in got}
    alone = statistics.median(times["alone, default"])
    print(f"{args.steps} steps, batch {args.batch} at {args.size}x{args.size}, {os.cpu_count()} cores, "
          f"median of {args.rounds}")
    print(f"{'run':<24} {'wall s':>8} {'vs two alone, one after the other':>36}")
    for name, (n, _) in rows.items():
        t = statistics.median(times[name])
        print(f"{name:<24} {t:>8.2f} {t / (n * alone):>36.2f}")
    print("weights identical in every run" if len(digests) == 1 else f"WEIGHTS DIFFER: {sorted(digests)}")
    if len(digests) != 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
