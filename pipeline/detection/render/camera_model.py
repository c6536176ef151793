"""A simple real-camera model for the demo_real stand-in: colour cast, vignetting, lens blur,
sensor noise and JPEG compression, all seeded per image."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pipeline.detection.params import CameraModelParams


def apply_camera_model(rgb: np.ndarray, p: CameraModelParams, seed: int, index: int) -> np.ndarray:
    """(H,W,3) uint8 -> (H,W,3) uint8 as if seen through a cheap overhead camera."""
    from scipy.ndimage import gaussian_filter  # imported when first used
    rng = np.random.default_rng([seed, index, 7])
    x = rgb.astype(np.float32) / 255.0
    x = x * np.asarray(p.colour_cast, np.float32)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx + 0.5 - w / 2) ** 2 + (yy + 0.5 - h / 2) ** 2) / ((min(h, w) / 2) ** 2)
    x = x * (1.0 - p.vignetting * np.clip(r2, 0, 1.5))[..., None]
    if p.blur_sigma > 0:
        x = gaussian_filter(x, sigma=(p.blur_sigma, p.blur_sigma, 0))
    x = x + rng.normal(0.0, p.noise_std, x.shape).astype(np.float32)
    out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=p.jpeg_quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
