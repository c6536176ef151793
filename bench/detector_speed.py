"""SqueezeDet inference and training throughput (images/s) at the demo's input size.

    python bench/detector_speed.py [--size 336 448] [--widths 0.5 1.0] [--batch 1 8] [--iters 10]
                                   [--device auto|cpu|cuda] [--train]

Inference = forward + decode + per-class NMS (``predict``), as the evaluate stage runs it. On CUDA
it runs under bf16 autocast with channels_last (the project's device setup) and reports peak memory.
Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detection.detector.squeezedet import SqueezeDet  # noqa: E402
from pipeline.detection.detector.training import predict, squeezedet_loss  # noqa: E402
from pipeline.train.device import pick_device  # noqa: E402

ANCHORS = [[7.0, 7.3], [9.3, 9.1], [12.1, 12.6], [15.0, 16.5], [19.0, 14.5]]


def bench(width: float, batch: int, size: tuple[int, int], iters: int, device: str, train: bool) -> str:
    setup = pick_device(device)
    model = setup.prepare(SqueezeDet(1, ANCHORS, size, width))
    x = setup.batch(torch.rand(batch, 3, *size) * 2 - 1)
    gts = [torch.tensor([[100.0, 100.0, 112.0, 111.0]])] * batch
    labels = [torch.zeros(1, dtype=torch.long)] * batch
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sync = torch.cuda.synchronize if setup.device.type == "cuda" else (lambda: None)

    def step() -> None:
        if train:
            with setup.autocast():
                out = model(x)
            loss, _ = squeezedet_loss(out, model.anchors_xyxy, gts, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with setup.autocast():
                predict(model, x)

    step()  # warm-up
    if setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    rate = batch * iters / (time.perf_counter() - t)
    mem = f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if setup.device.type == "cuda" else ""
    what = "train" if train else "inference"
    return f"{what} width {width} batch {batch} {size[1]}x{size[0]} on {setup.device}: {rate:.1f} images/s{mem}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, nargs=2, default=[336, 448])
    ap.add_argument("--widths", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for width in a.widths:
        for batch in a.batch:
            print(bench(width, batch, tuple(a.size), a.iters, a.device, a.train), flush=True)


if __name__ == "__main__":
    main()
