"""Pictures of the anime domain: real next to generated faces, detector boxes, loss curves."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pipeline.anime.face_detector import detect
from pipeline.io.images import grid


def rows_of_faces(sets: dict[str, np.ndarray], per_row: int = 8, label_width: int = 110) -> np.ndarray:
    """One row per set (e.g. real, then each variant), ``per_row`` faces each, the set's name on the left."""
    rows = []
    for name, x in sets.items():
        strip = grid(list(x[:per_row]), cols=per_row)
        label = Image.new("RGB", (label_width, strip.shape[0]), (255, 255, 255))
        ImageDraw.Draw(label).text((4, strip.shape[0] // 2 - 6), name[:18], fill=(0, 0, 0))
        rows.append(np.concatenate([np.asarray(label), strip], axis=1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def with_detections(x: np.ndarray, upscale: int = 2, zoom: int = 2, cols: int = 8) -> np.ndarray:
    """Faces enlarged ``zoom``×, each with the detector's best box (green) or a red frame when none."""
    out = []
    for face in x:
        im = Image.fromarray(face).resize((face.shape[1] * zoom, face.shape[0] * zoom), Image.NEAREST)
        d = ImageDraw.Draw(im)
        found = detect(face, upscale)
        if found:
            bx, by, bw, bh = (v * zoom for v in found[0].box)
            d.rectangle([bx, by, bx + bw, by + bh], outline=(0, 220, 0), width=2)
            d.text((2, 2), f"{found[0].likelihood:.2f}", fill=(0, 160, 0))
        else:
            d.rectangle([0, 0, im.width - 1, im.height - 1], outline=(230, 0, 0), width=2)
        out.append(np.asarray(im))
    return grid(out, cols=cols)
