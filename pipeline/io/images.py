"""Image I/O with clear errors: RGB PNG/JPEG in, PNG out; 16-bit instance masks."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import PipelineError

# Images from users open under this pixel limit, checked from the header before anything is decoded:
# 64 MP (8000 x 8000) is far above any camera frame or face here; a decompression bomb (a small PNG whose
# header says 20000 x 20000) is one line instead of PIL's DecompressionBombError traceback or 1.2 GB of RAM.
MAX_PIXELS = 64_000_000


def open_image(path: Path) -> Image.Image:
    """``Image.open`` with the pixel limit: PipelineError naming the file, its size and the limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise PipelineError(f"{path}: image is larger than {2 * Image.MAX_IMAGE_PIXELS} pixels, over the limit "
                            f"of {MAX_PIXELS} pixels") from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise PipelineError(f"{path}: image is {w}x{h} = {w * h} pixels, over the limit of {MAX_PIXELS} pixels")
    return im


def load_rgb(path: Path) -> np.ndarray:
    """(H,W,3) uint8; raises PipelineError naming the file if it is missing, unreadable or too large."""
    try:
        with open_image(path) as im:
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
        with open_image(path) as im:
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
