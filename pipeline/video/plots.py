"""Pictures of the video domain: animated GIF grids of clips (PIL), frame strips (PNG) and loss curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.images import grid


def _rgb(frame: np.ndarray, scale: int) -> np.ndarray:
    """(C, H, W) uint8 → (H·scale, W·scale, 3) uint8."""
    f = frame if frame.shape[0] == 3 else np.repeat(frame[:1], 3, axis=0)
    return f.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)


def grid_frames(clips: np.ndarray, cols: int = 4, scale: int = 2) -> list[np.ndarray]:
    """One tiled RGB picture per time step of uint8 clips (N, C, T, H, W)."""
    return [grid([_rgb(c[:, t], scale) for c in clips], cols=cols) for t in range(clips.shape[2])]


def save_gif(path: Path, frames: list[np.ndarray], fps: float = 5.0) -> None:
    """An endlessly looping animated GIF (PIL), ``fps`` frames per second."""
    from PIL import Image

    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=int(round(1000 / fps)), loop=0,
                optimize=False)


def clips_gif(path: Path, clips: np.ndarray, cols: int = 4, fps: float = 5.0, scale: int = 2) -> None:
    save_gif(path, grid_frames(clips, cols, scale), fps)


def interpolation_gif(path: Path, interp: np.ndarray, fps: float = 5.0, scale: int = 2) -> None:
    """(pairs, steps, C, T, H, W): one row per pair, one column per interpolation step, animated over T."""
    pairs, steps = interp.shape[:2]
    clips_gif(path, interp.reshape(pairs * steps, *interp.shape[2:]), cols=steps, fps=fps, scale=scale)


def strip(clips: np.ndarray, scale: int = 2) -> np.ndarray:
    """A still: one row per clip, its frames left to right (for MLflow's image view)."""
    t = clips.shape[2]
    return grid([_rgb(c[:, k], scale) for c in clips for k in range(t)], cols=t)
