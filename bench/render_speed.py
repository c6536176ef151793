"""Render throughput of the demo profile on this machine (images/min), through the render stage's
own worker pool. Usage: python bench/render_speed.py [N_IMAGES] [SHARDS] [DEVICE]
DEVICE: auto (default: params.yaml's render.device), cpu or gpu (fails if Cycles finds no GPU)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.params import load_params
from pipeline.detection.render.dataset import render_specs  # noqa: E402
from pipeline.detection.render.sampling import sample_scene  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    p = load_params(Path(__file__).resolve().parents[1] / "params.yaml").render
    shards = int(sys.argv[2]) if len(sys.argv) > 2 else p.shards
    device = sys.argv[3] if len(sys.argv) > 3 else p.device
    specs = [sample_scene(p.scene, p.camera, 12345, i, "synthetic", p.samples, p.denoise) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        render_specs(specs, Path(tmp), shards, device)
        dt = time.perf_counter() - t
    print(f"{n} images {p.camera.width}x{p.camera.height} @ {p.samples} spp, {shards} shards, device {device}: "
          f"{dt:.1f} s -> {60 * n / dt:.1f} images/min (worker start-up included)")


if __name__ == "__main__":
    main()
