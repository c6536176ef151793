"""The real domain: import a user's own images + COCO JSON per split, validated before copying."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.io.coco import Coco, load_image, read_coco, write_coco

SPLITS = ("train", "val", "test")


def import_split(source: Path, split: str, out: Path) -> Coco:
    """Copy ``source/<split>.json`` and the images it names into ``out`` after validating both."""
    coco_path = source / f"{split}.json"
    coco = read_coco(coco_path, image_root=source)
    for im in coco.images:
        load_image(source, im, coco_path)
        if im.mask_file:
            load_image(source, im, coco_path, mask=True)
        for rel in filter(None, (im.file_name, im.mask_file)):
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, dst)
    write_coco(out / "coco.json", coco)
    return coco
