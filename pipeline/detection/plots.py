"""The detection pipeline's pictures: annotated renders and detections on real test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pipeline.detection.predictions import read_predictions
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


def draw_detections(rgb: np.ndarray, gt: Any, boxes: Any, scores: Any, threshold: float) -> np.ndarray:
    """Ground-truth boxes green; detections scoring >= ``threshold`` red with their score."""
    im = Image.fromarray(rgb)
    d = ImageDraw.Draw(im)
    for x1, y1, x2, y2 in np.asarray(gt, dtype=float).reshape(-1, 4):
        d.rectangle([x1, y1, x2 - 1, y2 - 1], outline=(0, 230, 0))
    for (x1, y1, x2, y2), s in zip(np.asarray(boxes, dtype=float).reshape(-1, 4), np.asarray(scores).reshape(-1)):
        if s >= threshold:
            d.rectangle([x1, y1, x2 - 1, y2 - 1], outline=(255, 40, 40))
            d.text((x1, max(0.0, y1 - 10)), f"{s:.2f}", fill=(255, 40, 40))
    return np.asarray(im)


def detections_grid(predictions: Path, threshold: float, n: int = 4, cols: int = 2) -> np.ndarray:
    """The first ``n`` images of a predictions file with gt (green) and kept detections (red)."""
    files, preds, gts = read_predictions(predictions)
    tiles = [draw_detections(load_rgb(Path(f)), g, p["boxes"], p["scores"], threshold)
             for f, p, g in list(zip(files, preds, gts))[:n]]
    return grid(tiles, cols=cols)
