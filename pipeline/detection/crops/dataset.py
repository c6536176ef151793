"""Dataset-level crop (seed Algorithm 5) and reinsert (seed Algorithm 6) over COCO datasets."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from pipeline.detection.crops.geometry import CropGeom, crop, crop_geometry, radial_distance, reinsert
from pipeline.errors import PipelineError
from pipeline.io.coco import Coco, CocoAnn, load_image, write_coco
from pipeline.io.images import load_rgb, save_rgb
from pipeline.detection.crops.manifest import write_manifest
from pipeline.detection.params import CropParams, ReinsertParams

if TYPE_CHECKING:
    import pandas as pd


def _keep(ann: CocoAnn, wh: tuple[int, int], p: CropParams) -> bool:
    f = p.filter
    return (ann.area >= f.min_person_px and ann.head_bbox[2] * ann.head_bbox[3] >= f.min_head_box_px
            and radial_distance(ann.head, wh) <= f.max_centre_dist)


def crop_dataset(root: Path, coco: Coco, p: CropParams, out: Path, desc: str = "crop") -> pd.DataFrame:
    """Write one upright crop per kept head annotation into ``out`` plus ``out/manifest.csv``."""
    by_image: dict[int, list[CocoAnn]] = defaultdict(list)
    for a in coco.annotations:
        by_image[a.image_id].append(a)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for im in tqdm(coco.images, desc=desc, unit="img"):
        anns = [a for a in by_image[im.id] if _keep(a, (im.width, im.height), p)]
        if not anns:
            continue
        rgb = load_image(root, im, root / "coco.json")
        for a in anns:
            g = crop_geometry(a.head, (im.width, im.height), p.size, p.offset)
            name = f"crops/{a.id:06d}.png"
            save_rgb(out / name, crop(rgb, g))
            rows.append({"crop_file": name, "source_image": im.file_name, "image_id": im.id, "ann_id": a.id,
                         **g.to_dict()})
    return write_manifest(out, rows)


def reinsert_dataset(root: Path, coco: Coco, crops: Path, manifest: pd.DataFrame, refined: Path,
                     p: ReinsertParams, out: Path) -> int:
    """Paste refined crops back into copies of the dataset's images; returns the number pasted."""
    groups = {k: g for k, g in manifest.groupby("image_id")}
    (out / "images").mkdir(parents=True, exist_ok=True)
    pasted = 0
    for im in tqdm(coco.images, desc="reinsert", unit="img"):
        dst = out / im.file_name
        dst.parent.mkdir(parents=True, exist_ok=True)
        rows = groups.get(im.id)
        if rows is None:
            shutil.copyfile(root / im.file_name, dst)
            continue
        if not im.mask_file:
            raise PipelineError(f"{root}: image {im.id} has no instance mask; reinsert needs masks")
        rgb, mask = load_image(root, im, root / "coco.json"), load_image(root, im, root / "coco.json", mask=True)
        items = []
        for r in rows.itertuples():
            g = CropGeom.from_dict({"cx": r.cx, "cy": r.cy, "angle": r.angle, "size": r.size})
            refined_crop = load_rgb(refined / r.crop_file)
            if refined_crop.shape[:2] != (g.size, g.size):
                raise PipelineError(f"{refined / r.crop_file}: expected {g.size}x{g.size}, got "
                                    f"{refined_crop.shape[1]}x{refined_crop.shape[0]}")
            items.append((int(r.ann_id), g, load_rgb(crops / r.crop_file), refined_crop))
        save_rgb(dst, reinsert(rgb, mask, items, p.feather, p.mode))
        pasted += len(items)
    for im in coco.images:
        if im.mask_file:
            (out / im.mask_file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / im.mask_file, out / im.mask_file)
    write_coco(out / "coco.json", Coco(coco.images, coco.annotations, {**coco.info, "refined": True}))
    return pasted


def crop_grid_tiles(folder: Path, manifest: pd.DataFrame, n: int = 16) -> list[np.ndarray]:
    return [load_rgb(folder / f) for f in manifest["crop_file"].head(n)]
