"""Image I/O with clear errors: RGB PNG/JPEG in, PNG out; 16-bit instance masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import PipelineError


def load_rgb(path: Path) -> np.ndarray:
    """(H,W,3) uint8; raises PipelineError naming the file if it is missing or unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PipelineError(f"{path}: unreadable or corrupt image ({type(exc).__name__})") from None


def save_rgb(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(path, compress_level=3)


def load_mask(path: Path) -> np.ndarray:
    """(H,W) int32 instance mask: pixel value = annotation id, 0 = background."""
    try:
        with Image.open(path) as im:
            return np.asarray(im, dtype=np.int32)
    except FileNotFoundError:
        raise PipelineError(f"{path}: instance mask not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise PipelineError(f"{path}: unreadable or corrupt instance mask") from None


def save_mask(path: Path, mask: np.ndarray) -> None:
    """16-bit PNG so that annotation ids up to 65535 survive."""
    if mask.max(initial=0) > 65535:
        raise PipelineError(f"{path}: annotation id {int(mask.max())} does not fit a 16-bit mask")
    Image.fromarray(mask.astype(np.uint16)).save(path)


def grid(images: list[np.ndarray], cols: int = 4, pad: int = 2) -> np.ndarray:
    """Tile equally sized (H,W,3) uint8 images into one picture."""
    if not images:
        return np.zeros((8, 8, 3), np.uint8)
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    return out
