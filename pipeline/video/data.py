"""The video_prepare output: uint8 clips (N, C, T, H, W) per split, labels and meta.json.

Clips stay uint8 on disk; networks see them in [-1, 1] (``pipeline.train.pixels.to_unit``, the
GANs' shared scaling) and metrics in [0, 1].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.video import moving_mnist, ucf
from pipeline.video.params import VideoPrepareParams


@dataclass(frozen=True)
class ClipSet:
    x: np.ndarray  # (n, C, T, H, W) uint8
    y: np.ndarray  # (n,) class index


def build(p: VideoPrepareParams) -> tuple[dict[str, ClipSet], list[str], dict[str, float]]:
    """The clips of ``p.source`` per split, the class names and counts for the metrics."""
    if p.source == "moving_mnist":
        digits = moving_mnist.mnist_digits(p.digit_size)
        chosen = tuple(p.digits) if sorted(p.digits) != list(range(10)) else None
        motions = tuple(moving_mnist.MOTION_CLASSES.index(m) for m in p.motions)
        sets, counts = {}, {}
        for split, n in (("train", p.train_clips), ("test", p.test_clips)):
            c = moving_mnist.moving_mnist(n, split, p.size, p.frames, p.digit_size, p.speed, p.seed, digits,
                                          p.label, chosen, motions)
            sets[split] = ClipSet(c.x, moving_mnist.class_index(c, p.label, tuple(p.digits), motions))
        return sets, moving_mnist.class_names(p.label, tuple(p.digits), motions), counts
    root = Path(p.source)
    if not root.is_dir():
        raise PipelineError(f"video_prepare.source: {p.source!r} is neither 'moving_mnist' nor a folder")
    parts, classes, counts = ucf.load_folder(root, p.fps, p.size, p.frames, p.channels, p.clips_per_video,
                                             p.test, p.seed)
    return {s: ClipSet(x, y) for s, (x, y) in parts.items()}, classes, {k: float(v) for k, v in counts.items()}


def save_clips(path: Path, cs: ClipSet) -> None:
    np.savez(path, x=cs.x, y=cs.y.astype(np.int64))  # uint8 clips: compression buys little, costs seconds


def load_clips(path: Path, hint: str = "video_prepare") -> ClipSet:
    if not path.is_file():
        raise PipelineError(f"{path}: not found (run the {hint} stage)")
    try:
        with np.load(path) as z:
            return ClipSet(z["x"], z["y"])
    except (OSError, ValueError, KeyError) as exc:
        raise PipelineError(f"{path}: unreadable clip file ({type(exc).__name__})") from None


def read_prepared(folder: Path, splits: tuple[str, ...] = ("train", "test")) -> tuple[dict, dict[str, ClipSet]]:
    """meta.json (classes, shape, source) and the requested splits of a video_prepare output."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise PipelineError(f"{meta_file}: not found (run the video_prepare stage)")
    return json.loads(meta_file.read_text()), {s: load_clips(folder / f"{s}.npz") for s in splits}
