"""UCF-101-style folders (``<class>/<video file>``) → fixed-size clips, decoded with PyAV.

Frames are sampled at a set rate (the seed: 5 fps) by their timestamps, centre-cropped to a square,
resized, and cut into non-overlapping clips of T frames. UCF-101 names its files
``v_<Class>_g<group>_c<clip>``: clips of one group (one actor/scene) must not land on both sides of a
split, so the split is drawn over groups when the names carry them, else over videos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
GROUP = re.compile(r"_g(\d+)_c\d+$")


@dataclass(frozen=True)
class VideoFile:
    path: Path
    label: int
    group: str  # videos of one group stay on one side of the split


def list_videos(root: Path) -> tuple[list[VideoFile], list[str]]:
    """Every video under ``root/<class>/`` (sorted) and the class names."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise PipelineError(f"{root}: no <class>/ folders of videos")
    videos = []
    for i, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in VIDEO_SUFFIXES:
                m = GROUP.search(f.stem)
                videos.append(VideoFile(f, i, f"{c}/g{m.group(1)}" if m else f"{c}/{f.stem}"))
    if not videos:
        raise PipelineError(f"{root}: no video files ({', '.join(VIDEO_SUFFIXES)}) in its class folders")
    return videos, classes


def _square(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre crop to a square, then resize to ``size`` (area-averaging when shrinking)."""
    from PIL import Image

    h, w = frame.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(np.ascontiguousarray(frame[top:top + s, left:left + s]))
    return np.asarray(im.resize((size, size), Image.Resampling.BOX if s > size else Image.Resampling.BILINEAR))


def decode(path: Path, fps: float, size: int, channels: int = 3) -> np.ndarray:
    """Frames of ``path`` sampled at ``fps`` by timestamp, (n, channels, size, size) uint8.

    A frame is kept when its time reaches the next sampling instant k / fps, so a 25 fps video at 5 fps
    keeps every fifth frame; a video slower than ``fps`` keeps all of its frames.
    """
    import av

    fmt = "gray" if channels == 1 else "rgb24"
    kept, next_t = [], 0.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise PipelineError(f"{path}: undecodable video (no video stream)")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            for i, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else i / rate
                if t + 1e-6 >= next_t:
                    kept.append(_square(frame.to_ndarray(format=fmt), size))
                    next_t += 1.0 / fps
                    while next_t <= t:  # a gap in the timestamps: do not burst-sample after it
                        next_t += 1.0 / fps
    except PipelineError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PipelineError(f"{path}: undecodable video ({type(exc).__name__}: {exc})") from None
    if not kept:
        raise PipelineError(f"{path}: undecodable video (no frames)")
    x = np.stack(kept)
    return x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)


def clips_of(frames: np.ndarray, length: int, per_video: int) -> list[np.ndarray]:
    """Up to ``per_video`` non-overlapping clips (channels, length, H, W) from the start of the frames."""
    n = min(per_video, len(frames) // length)
    return [frames[k * length:(k + 1) * length].transpose(1, 0, 2, 3) for k in range(n)]


def split_groups(videos: list[VideoFile], test: float, seed: int) -> dict[str, str]:
    """Group → "train" or "test", per class, at least one group per side where a class has two."""
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for label in sorted({v.label for v in videos}):
        groups = sorted({v.group for v in videos if v.label == label})
        order = [groups[i] for i in rng.permutation(len(groups))]
        n_test = min(len(order) - 1, max(1, round(test * len(order)))) if len(order) > 1 else 0
        for i, g in enumerate(order):
            out[g] = "test" if i < n_test else "train"
    return out


def load_folder(root: Path, fps: float, size: int, frames: int, channels: int, per_video: int, test: float,
                seed: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], dict[str, int]]:
    """{split: (x (n, C, T, H, W) uint8, y)}, the class names, and counts (videos, too short)."""
    from tqdm import tqdm

    videos, classes = list_videos(root)
    where = split_groups(videos, test, seed)
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    short = 0
    for v in tqdm(videos, desc="decoding videos", unit="video"):
        clips = clips_of(decode(v.path, fps, size, channels), frames, per_video)
        short += not clips
        parts[where[v.group]][0].extend(clips)
        parts[where[v.group]][1].extend([v.label] * len(clips))
    out = {}
    for split, (xs, ys) in parts.items():
        if not xs:
            raise PipelineError(f"{root}: no {split} clips of {frames} frames at {fps:g} fps "
                                f"({short} of {len(videos)} videos too short)")
        out[split] = (np.stack(xs), np.asarray(ys, np.int64))
    return out, classes, {"videos": len(videos), "too_short": short}
