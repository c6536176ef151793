"""Spatiotemporal GAN training throughput (iterations/s) at the demo scale and at the seed's scale.

    python bench/video_gan_speed.py [--scale demo seed] [--batch 16] [--steps 5] [--device auto|cpu|cuda]

One iteration = one generator step + one discriminator step of the shared harness with the video family
(bce, feature matching + pixel terms on). demo: 32x32x8 clips, ngf/ndf 8; seed: 64x64x16, ngf/ndf 64.
On CUDA it runs with bf16 autocast (no channels_last: the 3D convs are 5D) and reports peak GPU memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.video.nets import VideoDiscriminator, VideoGenerator  # noqa: E402
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig  # noqa: E402
from pipeline.train.device import pick_device  # noqa: E402
from pipeline.video.gan import VideoGanFamily  # noqa: E402

SCALES = {"demo": (32, 8, 8, 64), "seed": (64, 16, 64, 100)}  # size, frames, width, latent


def bench(scale: str, batch: int, steps: int, device: str) -> str:
    size, frames, width, latent = SCALES[scale]
    fam = VideoGanFamily(VideoGenerator(3, 1, size, frames, latent, width),
                         VideoDiscriminator(3, 1, size, frames, width), latent, lambda_feat=1.0, lambda_vid=1.0)
    setup = dataclasses.replace(pick_device(device), channels_last=False)
    trainer = AdversarialTrainer(fam, TrainConfig(epochs=1, batch_size=batch, pool_size=0), setup=setup)
    data = {"x": torch.rand(batch, 1, frames, size, size) * 2 - 1, "y": torch.zeros(batch, dtype=torch.long)}
    trainer._step(data)  # warm-up
    cuda = setup.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        trainer._step(data)
    if cuda:
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    mem = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""
    return (f"{scale:5s} {size}x{size}x{frames} width {width} batch {batch} on {setup.device.type}: "
            f"{1 / dt:.2f} it/s ({batch / dt:.1f} clips/s){mem}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", nargs="+", default=["demo", "seed"], choices=list(SCALES))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    for scale in args.scale:
        print(bench(scale, args.batch, args.steps, args.device), flush=True)


if __name__ == "__main__":
    main()
