"""The real domain: import a user's own images + COCO JSON per split, validated before copying."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io.coco import Coco, read_coco, write_coco
from pipeline.io.images import load_mask, load_rgb

SPLITS = ("train", "val", "test")


def import_split(source: Path, split: str, out: Path) -> Coco:
    """Copy ``source/<split>.json`` and the images it names into ``out`` after validating both."""
    coco_path = source / f"{split}.json"
    coco = read_coco(coco_path, image_root=source)
    for im in coco.images:
        rgb = load_rgb(source / im.file_name)
        if rgb.shape[:2] != (im.height, im.width):
            raise PipelineError(f"{coco_path}: image {im.id} is {rgb.shape[1]}x{rgb.shape[0]} on disk "
                                f"but {im.width}x{im.height} in the JSON")
        if im.mask_file:
            mask = load_mask(source / im.mask_file)
            if mask.shape != (im.height, im.width):
                raise PipelineError(f"{source / im.mask_file}: mask size differs from image {im.id}")
        for rel in filter(None, (im.file_name, im.mask_file)):
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, dst)
    write_coco(out / "coco.json", coco)
    return coco
