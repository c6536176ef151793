"""Turn a rendered ID pass into an instance mask and COCO annotations.

Boxes come from mask pixels; a head hidden by an obstacle falls back to the head sphere projected
through the same fisheye model Blender uses. Nothing here assumes a pinhole camera.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.errors import PipelineError

from pipeline.io.coco import CocoAnn
from pipeline.detection.render.fisheye import Fisheye
from pipeline.detection.render.sampling import head_of

HEAD_G = 255


def fisheye_of(spec: dict[str, Any]) -> Fisheye:
    cam = spec["camera"]
    return Fisheye(cam["width"], cam["height"], cam["lens_mm"], cam["sensor_mm"], cam["fov_deg"],
                   tuple(cam["position"]))


def _pixel_box(ys: np.ndarray, xs: np.ndarray) -> list[float]:
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]


def sphere_box(fish: Fisheye, centre: np.ndarray, radius: float) -> list[float]:
    """Bounding box of a sphere's projection under the fisheye distortion, clipped to the image."""
    u, v = np.meshgrid(np.linspace(0, np.pi, 13), np.linspace(0, 2 * np.pi, 25))
    pts = centre + radius * np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1).reshape(-1, 3)
    px = fish.project(pts)
    x0, y0 = np.clip(px.min(0), 0, [fish.width, fish.height])
    x1, y1 = np.clip(px.max(0), 0, [fish.width, fish.height])
    return [float(x0), float(y0), float(max(x1 - x0, 0.5)), float(max(y1 - y0, 0.5))]


def annotate(spec: dict[str, Any], id_rgb: np.ndarray, meta: dict[str, Any], image_id: int,
             next_ann_id: int) -> tuple[np.ndarray, list[CocoAnn]]:
    """Decode the ID pass of one image; annotation ids start at ``next_ann_id``."""
    fish = fisheye_of(spec)
    pid = id_rgb[..., 0].astype(np.int32) + 256 * id_rgb[..., 2].astype(np.int32)
    is_head = id_rgb[..., 1] == HEAD_G
    mask = np.zeros(pid.shape, np.int32)
    anns: list[CocoAnn] = []
    for person in spec["people"]:
        ys, xs = np.nonzero(pid == person["id"])
        if len(ys) == 0:
            if person.get("asset"):  # a procedural person may hide behind a desk; a user asset must show
                raise PipelineError(f"{person['asset']}: the asset has no visible pixels in image "
                                    f"{spec['index']} (is it inside out, or scaled to nothing?)")
            continue  # fully hidden
        ann_id = next_ann_id + len(anns)
        mask[ys, xs] = ann_id
        asset = meta.get("assets", {}).get(str(person["id"]))
        centre, radius = (np.array(asset["head"]), asset["head_r"]) if asset else head_of(person)
        head_px = is_head[ys, xs]
        kp = fish.project(centre[None])[0]
        head_box = _pixel_box(ys[head_px], xs[head_px]) if head_px.any() else sphere_box(fish, centre, radius)
        kp = np.clip(kp, 0, [fish.width - 1e-3, fish.height - 1e-3])
        anns.append(CocoAnn(
            id=ann_id, image_id=image_id, bbox=_pixel_box(ys, xs), head_bbox=head_box,
            keypoints=[float(kp[0]), float(kp[1]), 2 if head_px.any() else 1], area=float(len(ys)),
            extra={"pose": person["pose"], "head_visible_px": int(head_px.sum()),
                   "head_3d": [round(float(c), 4) for c in centre]}))
    return mask, anns
