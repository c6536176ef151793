"""Pictures people would rather look at than read: annotated renders, crop grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.io.coco import Coco
from pipeline.io.images import grid, load_rgb


def draw_annotations(rgb: np.ndarray, anns) -> np.ndarray:
    """Person boxes green, head boxes red, head keypoints yellow."""
    im = Image.fromarray(rgb)
    d = ImageDraw.Draw(im)
    for a in anns:
        x, y, w, h = a.bbox
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=(0, 230, 0))
        x, y, w, h = a.head_bbox
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=(255, 40, 40))
        kx, ky = a.head
        d.ellipse([kx - 2, ky - 2, kx + 2, ky + 2], fill=(255, 230, 0))
    return np.asarray(im)


def annotated_grid(root: Path, coco: Coco, n: int = 8, cols: int = 4) -> np.ndarray:
    """The first ``n`` images of a dataset with their annotations drawn."""
    by_image: dict[int, list] = {}
    for a in coco.annotations:
        by_image.setdefault(a.image_id, []).append(a)
    tiles = [draw_annotations(load_rgb(root / im.file_name), by_image.get(im.id, [])) for im in coco.images[:n]]
    return grid(tiles, cols=cols)
