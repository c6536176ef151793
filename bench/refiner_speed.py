"""CycleGAN training throughput (iterations/s) at 128x128, ngf 64, 9 residual blocks, ndf 64.

    python bench/refiner_speed.py [--batch 1 8] [--steps 5] [--device auto|cpu|cuda] [--compile]

One iteration = one generator step + one discriminator step of the shared harness (C_CP loss set).
On CUDA it runs with bf16 autocast and channels_last, and reports peak GPU memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.train.adversarial import AdversarialTrainer, TrainConfig  # noqa: E402
from pipeline.detection.params import parse_spec  # noqa: E402
from pipeline.detection.refiner.training import FAMILIES  # noqa: E402


def bench(batch: int, steps: int, device: str, compile: bool) -> str:
    spec = parse_spec("bench", {"arch": "cyclegan", "losses": {"cyc_pixel": 10}},
                      {"ngf": 64, "n_blocks": 9, "ndf": 64})
    cfg = TrainConfig(epochs=1, batch_size=batch, device=device, compile=compile)
    trainer = AdversarialTrainer(FAMILIES["cyclegan"](spec), cfg)
    if trainer.setup.compile:
        for name in ("G_XY", "G_YX", "D_X", "D_Y"):
            setattr(trainer.family, name, torch.compile(getattr(trainer.family, name)))
    data = {"x": torch.rand(batch, 3, 128, 128) * 2 - 1, "y": torch.rand(batch, 3, 128, 128) * 2 - 1}
    trainer._step(data)  # warm-up (and compilation)
    sync = torch.cuda.synchronize if trainer.setup.device.type == "cuda" else (lambda: None)
    if trainer.setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        trainer._step(data)
    sync()
    dt = (time.perf_counter() - t) / steps
    mem = (f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
           if trainer.setup.device.type == "cuda" else "")
    return (f"{trainer.setup.device.type} bf16={trainer.setup.bf16} compile={trainer.setup.compile} batch {batch}: "
            f"{1 / dt:.3f} it/s ({batch / dt:.2f} images/s){mem}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for b in a.batch:
        print(bench(b, a.steps, a.device, a.compile), flush=True)
