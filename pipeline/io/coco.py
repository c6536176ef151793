"""COCO manifests: one JSON per split, category ``person``, a head box and a head keypoint per person.

Each annotation carries the standard ``bbox`` (person box, [x, y, w, h] in pixels), ``keypoints``
([x, y, v] for the head centre) and the extension field ``head_bbox``. Each image may carry
``mask_file``: a 16-bit PNG whose pixel values are annotation ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pipeline.errors import PipelineError
from pipeline.io.atomic import write_json_atomic

CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": ["head"], "skeleton": []}]


@dataclass
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int
    mask_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CocoAnn:
    id: int
    image_id: int
    bbox: list[float]
    head_bbox: list[float]
    keypoints: list[float]
    area: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def head(self) -> tuple[float, float]:
        return self.keypoints[0], self.keypoints[1]


@dataclass
class Coco:
    images: list[CocoImage]
    annotations: list[CocoAnn]
    info: dict[str, Any] = field(default_factory=dict)

    def people(self) -> Iterator[tuple[CocoImage, CocoAnn]]:
        """(image, annotation) pairs in annotation order."""
        by_id = {im.id: im for im in self.images}
        for ann in self.annotations:
            yield by_id[ann.image_id], ann

    def to_json(self) -> dict[str, Any]:
        images = [{"id": im.id, "file_name": im.file_name, "width": im.width, "height": im.height,
                   **({"mask_file": im.mask_file} if im.mask_file else {}), **im.extra} for im in self.images]
        anns = [{"id": a.id, "image_id": a.image_id, "category_id": 1, "bbox": [round(v, 2) for v in a.bbox],
                 "area": round(a.area, 2), "iscrowd": 0, "head_bbox": [round(v, 2) for v in a.head_bbox],
                 "keypoints": [round(a.keypoints[0], 2), round(a.keypoints[1], 2), int(a.keypoints[2])],
                 "num_keypoints": 1, **a.extra} for a in self.annotations]
        return {"info": self.info, "images": images, "annotations": anns, "categories": CATEGORIES}


def write_coco(path: Path, coco: Coco) -> None:
    write_json_atomic(path, coco.to_json())


def _box_ok(box: Any, w: int, h: int, tol: float = 0.5) -> bool:
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        return False
    x, y, bw, bh = box
    return bw > 0 and bh > 0 and x >= -tol and y >= -tol and x + bw <= w + tol and y + bh <= h + tol


def read_coco(path: Path, image_root: Path | None = None, allow_empty: bool = False) -> Coco:
    """Load and validate a COCO file; every problem names the file and the offending id."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: COCO file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: malformed COCO JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
            data.get("annotations"), list):
        raise PipelineError(f"{path}: not a COCO file (needs 'images' and 'annotations' lists)")
    images: dict[int, CocoImage] = {}
    for im in data["images"]:
        try:
            ci = CocoImage(int(im["id"]), str(im["file_name"]), int(im["width"]), int(im["height"]),
                           im.get("mask_file"),
                           {k: v for k, v in im.items() if k not in ("id", "file_name", "width", "height", "mask_file")})
        except (KeyError, TypeError, ValueError):
            raise PipelineError(f"{path}: image entry {im!r:.80} needs id, file_name, width, height") from None
        if ci.id in images:
            raise PipelineError(f"{path}: duplicate image id {ci.id}")
        if image_root is not None and not (image_root / ci.file_name).is_file():
            raise PipelineError(f"{path}: image {ci.id} file {image_root / ci.file_name} does not exist")
        images[ci.id] = ci
    if not images and not allow_empty:
        raise PipelineError(f"{path}: empty split (no images)")
    anns, seen = [], set()
    for a in data["annotations"]:
        aid = a.get("id") if isinstance(a, dict) else None
        if not isinstance(aid, int) or aid in seen or aid <= 0:
            raise PipelineError(f"{path}: annotation id {aid!r} is missing, not a positive int, or duplicated")
        seen.add(aid)
        im = images.get(a.get("image_id"))
        if im is None:
            raise PipelineError(f"{path}: annotation {aid} refers to unknown image_id {a.get('image_id')!r}")
        for key in ("bbox", "head_bbox"):
            if not _box_ok(a.get(key), im.width, im.height):
                raise PipelineError(f"{path}: annotation {aid} {key} {a.get(key)!r} is missing or outside "
                                    f"image {im.id} ({im.width}x{im.height})")
        kp = a.get("keypoints")
        if not (isinstance(kp, list) and len(kp) >= 3 and kp[2] > 0):
            raise PipelineError(f"{path}: annotation {aid} has no visible head keypoint")
        x, y, bw, bh = a["bbox"]
        anns.append(CocoAnn(aid, im.id, list(a["bbox"]), list(a["head_bbox"]), list(kp[:3]),
                            float(a.get("area", bw * bh)),
                            {k: v for k, v in a.items() if k not in (
                                "id", "image_id", "bbox", "head_bbox", "keypoints", "area", "category_id",
                                "iscrowd", "num_keypoints")}))
    return Coco(list(images.values()), anns, data.get("info", {}))
