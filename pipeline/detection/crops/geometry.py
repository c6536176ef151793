"""Upright person crops from top-down fisheye images (seed Algorithm 5) and their reinsertion (Algorithm 6).

Conventions: continuous pixel coordinates, pixel (row i, column j) spans [j, j+1) x [i, i+1), so its centre is
(j + 0.5, i + 0.5); the optical centre of a W x H image is (W/2, H/2). A crop is a ``size`` x ``size`` square,
rotated so that the radial direction pointing *away* from the image centre is up: the head sits near the top and
the body, which under a top-down fisheye extends from the head toward the image centre, below it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MODES = ("residual", "paste")


@dataclass(frozen=True)
class CropGeom:
    """Crop centre (cx, cy) in source pixel coordinates, rotation ``angle`` (radians) and square ``size``."""

    cx: float
    cy: float
    angle: float
    size: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain-type dict (for manifests)."""
        return {"cx": float(self.cx), "cy": float(self.cy), "angle": float(self.angle), "size": int(self.size)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CropGeom:
        """Inverse of :meth:`to_dict`."""
        return cls(float(d["cx"]), float(d["cy"]), float(d["angle"]), int(d["size"]))


Item = tuple[int, CropGeom, np.ndarray, np.ndarray]


def radial_distance(head_xy: Sequence[float], image_wh: Sequence[int]) -> float:
    """Distance of the head from the image centre divided by min(W, H)/2 (0 at the centre, ~1.4 at corners)."""
    w, h = image_wh
    return float(np.hypot(head_xy[0] - w / 2, head_xy[1] - h / 2) / (min(w, h) / 2))


def _toward_centre(head_xy: Sequence[float], image_wh: Sequence[int]) -> np.ndarray:
    d = np.array([image_wh[0] / 2 - head_xy[0], image_wh[1] / 2 - head_xy[1]], dtype=float)
    n = float(np.hypot(d[0], d[1]))
    return np.array([0.0, 1.0]) if n < 1e-6 else d / n


def crop_geometry(head_xy: Sequence[float], image_wh: Sequence[int], size: int, offset: float) -> CropGeom:
    """Crop centred ``offset * size`` px from the head toward the image centre, radial-outward pointing up.

    With u the unit vector from the head toward the centre (image-down if the head is at the centre), crop +y
    maps to +u in the source, so the head lands at crop position (size/2, size/2 - offset*size).
    """
    u = _toward_centre(head_xy, image_wh)
    c = np.asarray(head_xy, dtype=float) + offset * size * u
    # Rotation R(angle) has second column (-sin, cos) == u.
    return CropGeom(float(c[0]), float(c[1]), float(np.arctan2(-u[0], u[1])), int(size))


def crop_affine(g: CropGeom) -> np.ndarray:
    """3x3 matrix mapping crop continuous coords (x, y, 1) to source continuous coords.

    Crop pixel (i, j) has centre (j + 0.5, i + 0.5); the crop centre (size/2, size/2) maps to (cx, cy).
    """
    c, s, h = np.cos(g.angle), np.sin(g.angle), g.size / 2
    return np.array([[c, -s, g.cx - (c - s) * h], [s, c, g.cy - (s + c) * h], [0.0, 0.0, 1.0]])


def crop_affine_inv(g: CropGeom) -> np.ndarray:
    """3x3 matrix mapping source continuous coords to crop continuous coords (inverse of :func:`crop_affine`)."""
    c, s, h = np.cos(g.angle), np.sin(g.angle), g.size / 2
    return np.array([[c, s, h - (c * g.cx + s * g.cy)], [-s, c, h - (-s * g.cx + c * g.cy)], [0.0, 0.0, 1.0]])


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]])


def _sample(arr: np.ndarray, xy: np.ndarray, order: int, mode: str) -> np.ndarray:
    """Sample ``arr`` (H, W[, C]) at continuous coords ``xy`` (2, ...); returns shape (...[, C])."""
    from scipy.ndimage import map_coordinates  # scipy.ndimage: imported when first used
    idx = np.stack([xy[1] - 0.5, xy[0] - 0.5])  # continuous coords -> array index (pixel centres at integers)
    if arr.ndim == 2:
        return map_coordinates(arr, idx, order=order, mode=mode)
    chans = [map_coordinates(arr[..., k], idx, order=order, mode=mode) for k in range(arr.shape[2])]
    return np.stack(chans, axis=-1)


def _crop_grid(g: CropGeom) -> np.ndarray:
    """Source coords (2, size, size) of the crop's pixel centres."""
    q = np.arange(g.size) + 0.5
    qx, qy = np.meshgrid(q, q)
    return _apply(crop_affine(g), qx, qy)


def crop(image: np.ndarray, g: CropGeom) -> np.ndarray:
    """Bilinear (size, size[, C]) crop of ``image``; uint8 in -> rounded uint8 out, float in -> same float out.

    Samples outside the image repeat the nearest edge pixel (``mode='nearest'``) rather than black, so the
    refiner sees no artificial hard edge; those pixels never get written back by :func:`reinsert`.
    """
    work = image if np.issubdtype(image.dtype, np.floating) else image.astype(np.float32)
    out = _sample(work, _crop_grid(g), 1, "nearest")
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(work.dtype, copy=False)


def crop_mask(mask: np.ndarray, g: CropGeom, ann_id: int) -> np.ndarray:
    """Nearest-neighbour crop of the instance ``mask``: True where it equals ``ann_id`` (outside image: False)."""
    return _sample(mask, _crop_grid(g), 0, "grid-constant") == ann_id


def _footprint_box(g: CropGeom, hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Source pixel box (y0, y1, x0, x1) covering the crop's rotated square, clipped to the image."""
    s = g.size
    corners = _apply(crop_affine(g), np.array([0.0, s, 0.0, s]), np.array([0.0, 0.0, s, s]))
    x0, y0 = np.floor(corners.min(axis=1)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=1)).astype(int)
    y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, hw[0]), min(x1, hw[1])
    return None if y0 >= y1 or x0 >= x1 else (y0, y1, x0, x1)


def _ramp(dist: np.ndarray, feather: int) -> np.ndarray:
    """Inward feather: 0 at/outside the edge, rising linearly to 1 over ``feather`` px (hard step if 0)."""
    if feather <= 0:
        return (dist > 0).astype(np.float32)
    return np.clip(np.asarray(dist, dtype=np.float32) / feather, 0.0, 1.0)


def _mask_alpha(mask: np.ndarray, ann_id: int, box: tuple[int, int, int, int], feather: int) -> np.ndarray:
    """Inward feather of ``mask == ann_id`` over ``box``, exact: the EDT runs on the box padded by ``feather``."""
    from scipy.ndimage import distance_transform_edt
    y0, y1, x0, x1 = box
    h, w = mask.shape
    py0, py1, px0, px1 = max(y0 - feather, 0), min(y1 + feather, h), max(x0 - feather, 0), min(x1 + feather, w)
    own = mask[py0:py1, px0:px1] == ann_id
    if feather > 0 and own.any() and not own.all():
        dist = distance_transform_edt(own)
    else:  # no background pixel within reach: every own pixel is >= feather px from the mask edge
        dist = own.astype(np.float32) * max(feather, 1)
    return _ramp(dist[y0 - py0:y1 - py0, x0 - px0:x1 - px0], feather)


def _reinsert_one(out: np.ndarray, image: np.ndarray, mask: np.ndarray, item: Item, feather: int,
                  mode: str) -> None:
    """Write one item into ``out``; touches only pixels owned by its ann_id inside its crop footprint."""
    ann_id, g, orig, refined = item
    box = _footprint_box(g, mask.shape)
    if box is None:
        return
    y0, y1, x0, x1 = box
    px, py = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    q = _apply(crop_affine_inv(g), px, py)
    edge = np.minimum(np.minimum(q[0], q[1]), np.minimum(g.size - q[0], g.size - q[1]))
    alpha = _ramp(edge, feather) * _mask_alpha(mask, ann_id, box, feather)
    sel = alpha > 0
    if not sel.any():
        return
    a = alpha[sel][:, None]
    src = image[y0:y1, x0:x1][sel].astype(np.float32)
    if mode == "residual":
        delta = refined.astype(np.float32) - orig.astype(np.float32)
        val = src + a * _sample(delta, q[:, sel], 1, "nearest")
    else:
        val = (1.0 - a) * src + a * _sample(refined.astype(np.float32), q[:, sel], 1, "nearest")
    out[y0:y1, x0:x1][sel] = np.clip(np.rint(val), 0, 255).astype(np.uint8)


def reinsert(image: np.ndarray, mask: np.ndarray, items: Sequence[Item], feather: int,
             mode: str = "residual") -> np.ndarray:
    """Warp refined crops back into a copy of ``image`` (uint8, H x W x C); returns the new uint8 image.

    ``items`` are (ann_id, geometry, original_crop, refined_crop). Per item, alpha = inward feather of the
    person's own mask (``mask == ann_id``) x inward feather of the crop footprint, both over ``feather`` px
    (0: hard edges). ``"residual"`` adds alpha * warp_back(refined - original) to the source, keeping its
    high-frequency detail (identity refiner -> exact input); ``"paste"`` blends alpha * warp_back(refined).

    Only pixels owned by an item's ann_id are ever written, everything else is a bit-exact copy, and each pixel
    can only be changed by the one crop whose ann_id owns it, computed from the unmodified input, so overlapping
    crops are deterministic and the order of ``items`` does not matter. Work is limited to each footprint's box.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[:2] != mask.shape:
        raise ValueError(f"need uint8 (H, W, C) image matching mask {mask.shape}, got {image.dtype} {image.shape}")
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    ids = [int(it[0]) for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate ann_id in items: {sorted(ids)}")
    out = image.copy()
    for it in items:
        want = (it[1].size, it[1].size, image.shape[2])
        if it[2].shape != want or it[3].shape != want:
            raise ValueError(f"ann {it[0]}: crops must be {want}, got {it[2].shape} and {it[3].shape}")
        _reinsert_one(out, image, mask, it, int(feather), mode)
    return out
