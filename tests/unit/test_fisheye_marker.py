"""The annotation projection must agree with what Blender renders (within 1.5 px)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline.detection.render.fisheye import Fisheye
from tests.conftest import ROOT

CAMERA = {"width": 448, "height": 336, "lens_mm": 3.0, "sensor_mm": 12.0, "fov_deg": 180.0,
          "position": [0.3, -0.2, 3.0]}
FISH = Fisheye(**{**CAMERA, "position": tuple(CAMERA["position"])})


def _rendered_centroid(point, tmp_path) -> np.ndarray:
    out = tmp_path / "marker.png"
    subprocess.run([sys.executable, "-m", "pipeline.detection.render.blender.marker", json.dumps(CAMERA),
                    *map(str, point), str(out)], cwd=ROOT, check=True, capture_output=True)
    a = np.asarray(Image.open(out).convert("L"), dtype=float)
    ys, xs = np.nonzero(a > 8)
    assert len(xs) > 0, "marker not visible"
    w = a[ys, xs]
    return np.array([(w * (xs + 0.5)).sum() / w.sum(), (w * (ys + 0.5)).sum() / w.sum()])


@pytest.mark.parametrize("point, where", [
    ((0.3, -0.2, 0.0), "centre"),
    ((1.1, 0.6, 0.9), "inner"),
    ((-3.2, -2.5, 0.4), "outer"),
    ((-6.5, 4.5, 2.6), "near edge, ~86 deg off axis"),
])
def test_projection_matches_render(point, where, tmp_path):
    rendered = _rendered_centroid(point, tmp_path)
    projected = FISH.project(np.array([point]))[0]
    assert np.linalg.norm(rendered - projected) <= 1.5, (where, rendered, projected)
    if where.startswith("near edge"):
        r = np.linalg.norm(projected - FISH.centre)
        assert r > 0.9 * FISH.radius_of_angle(90), "the edge case must really be near the fisheye rim"


def test_projection_is_not_pinhole():
    # A pinhole model would put a point 80 deg off axis ~5.7x further out than the fisheye does.
    p = np.array([[0.3 + 3.0 * np.tan(np.radians(80)), -0.2, 0.0]])
    r = FISH.project(p)[0, 0] - FISH.centre[0]
    assert abs(r - FISH.radius_of_angle(80)) < 1e-6
    assert r < 3.0 * FISH.px_per_mm * np.tan(np.radians(80))
