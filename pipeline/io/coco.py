"""COCO manifests: one JSON per split, category ``person``, a head box and a head keypoint per person.

Each annotation carries the standard ``bbox`` (person box, [x, y, w, h] in pixels), ``keypoints``
([x, y, v] for the head centre) and the extension field ``head_bbox``. Each image may carry
``mask_file``: a 16-bit PNG whose pixel values are annotation ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import PipelineError
from pipeline.io.atomic import write_json_atomic
from pipeline.io.paths import inside
from pipeline.io.tables import Finite

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


class _Record(BaseModel):
    """Types of one COCO record: strict (no "2" for 2), finite numbers; other keys are kept as extras."""

    model_config = ConfigDict(strict=True, extra="allow")


Box = Annotated[list[Finite], Field(min_length=4, max_length=4)]


class CocoImageRecord(_Record):
    id: int = Field(ge=0)
    file_name: str = Field(min_length=1)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    mask_file: Optional[str] = None


class CocoAnnRecord(_Record):
    id: int = Field(gt=0)
    image_id: int
    bbox: Box
    head_bbox: Box
    keypoints: Annotated[list[Finite], Field(min_length=3)]
    area: Optional[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = None


class CocoFile(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    images: list[CocoImageRecord]
    annotations: list[CocoAnnRecord]
    info: dict[str, Any] = Field(default_factory=dict)


def _where(data: Any, loc: tuple) -> str:
    """``annotations[4] (id 17).keypoints[2]`` for a pydantic error location in ``data``."""
    parts: list[str] = []
    node = data
    for depth, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if depth == 1 and isinstance(node, dict) and "id" in node:
                parts.append(f" (id {node['id']!r})")
        else:
            parts.append(f".{part}" if parts else str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)


def _box_ok(box: list[float], w: int, h: int, tol: float = 0.5) -> bool:
    x, y, bw, bh = box
    return bw > 0 and bh > 0 and x >= -tol and y >= -tol and x + bw <= w + tol and y + bh <= h + tol


def read_coco(path: Path, image_root: Path | None = None, allow_empty: bool = False) -> Coco:
    """Load and validate a COCO file: types by schema (:class:`CocoFile`), then ids, references, boxes and
    keypoints inside their image, and (with ``image_root``) files that exist under the root. Every problem
    is one line naming the file, the record and the field."""
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
    try:
        parsed = CocoFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        got = f", got {err['input']!r:.60}" if err["type"] not in ("missing",) else ""
        raise PipelineError(f"{path}: {_where(data, err['loc'])}: {err['msg']}{got}") from None
    images: dict[int, CocoImage] = {}
    for im in parsed.images:
        if im.id in images:
            raise PipelineError(f"{path}: duplicate image id {im.id}")
        for key in ("file_name", "mask_file"):
            rel = getattr(im, key)
            if image_root is not None and rel is not None:
                full = inside(image_root, rel, f"{path}: image {im.id} {key}")
                if not full.is_file():
                    raise PipelineError(f"{path}: image {im.id} {key} {full} does not exist")
        images[im.id] = CocoImage(im.id, im.file_name, im.width, im.height, im.mask_file, dict(im.model_extra or {}))
    if not images and not allow_empty:
        raise PipelineError(f"{path}: empty split (no images)")
    anns, seen = [], set()
    for a in parsed.annotations:
        if a.id in seen:
            raise PipelineError(f"{path}: duplicate annotation id {a.id}")
        seen.add(a.id)
        im = images.get(a.image_id)
        if im is None:
            raise PipelineError(f"{path}: annotation {a.id} refers to unknown image_id {a.image_id!r}")
        for key in ("bbox", "head_bbox"):
            if not _box_ok(getattr(a, key), im.width, im.height):
                raise PipelineError(f"{path}: annotation {a.id} {key} {getattr(a, key)!r} is empty or outside "
                                    f"image {im.id} ({im.width}x{im.height})")
        x, y, v = a.keypoints[:3]
        if v <= 0:
            raise PipelineError(f"{path}: annotation {a.id} has no visible head keypoint")
        if not (-0.5 <= x <= im.width + 0.5 and -0.5 <= y <= im.height + 0.5):
            raise PipelineError(f"{path}: annotation {a.id} head keypoint ({x:g}, {y:g}) is outside "
                                f"image {im.id} ({im.width}x{im.height})")
        extra = {k: val for k, val in (a.model_extra or {}).items() if k not in ("category_id", "iscrowd", "num_keypoints")}
        anns.append(CocoAnn(a.id, im.id, list(a.bbox), list(a.head_bbox), list(a.keypoints[:3]),
                            float(a.area if a.area is not None else a.bbox[2] * a.bbox[3]), extra))
    return Coco(list(images.values()), anns, parsed.info)


def load_image(root: Path, im: CocoImage, source: Path | str, mask: bool = False) -> Any:
    """Image ``im`` of the COCO file ``source`` (its mask with ``mask``), read from ``root`` and checked
    against the size the file declares: (H, W, 3) uint8, or the (H, W) int32 mask."""
    from pipeline.io.images import load_mask, load_rgb

    rel = im.mask_file if mask else im.file_name
    if rel is None:
        raise PipelineError(f"{source}: image {im.id} has no mask_file")
    arr = load_mask(root / rel) if mask else load_rgb(root / rel)
    if arr.shape[:2] != (im.height, im.width):
        raise PipelineError(f"{source}: image {im.id} {'mask' if mask else 'file'} {rel} is {arr.shape[1]}x"
                            f"{arr.shape[0]} on disk but {im.width}x{im.height} in the JSON")
    return arr
