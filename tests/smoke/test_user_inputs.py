"""User background plates and human assets go through the real Blender path."""

import numpy as np
import pytest
from PIL import Image

from pipeline.io.coco import read_coco
from pipeline.io.images import load_rgb
from tests.conftest import run_stage, write_params

SMALL = {"images": 1, "shards": 1, "samples": 2, "camera": {"width": 128, "height": 96}}

OBJ = """# a 1.7 m box-person, Y up as OBJ files usually are: body and a head cube on top
v -0.2 0 0.15
v 0.2 0 0.15
v 0.2 0 -0.15
v -0.2 0 -0.15
v -0.2 1.45 0.15
v 0.2 1.45 0.15
v 0.2 1.45 -0.15
v -0.2 1.45 -0.15
v -0.1 1.5 0.1
v 0.1 1.5 0.1
v 0.1 1.5 -0.1
v -0.1 1.5 -0.1
v -0.1 1.7 0.1
v 0.1 1.7 0.1
v 0.1 1.7 -0.1
v -0.1 1.7 -0.1
f 1 2 3 4
f 5 8 7 6
f 1 5 6 2
f 2 6 7 3
f 3 7 8 4
f 4 8 5 1
f 9 10 11 12
f 13 16 15 14
f 9 13 14 10
f 10 14 15 11
f 11 15 16 12
f 12 16 13 9
"""


def test_background_plate_is_composited(tmp_path):
    plates = tmp_path / "plates"
    plates.mkdir()
    rng = np.random.default_rng(0)
    plate = (rng.uniform(0, 1, (96, 128, 1)) * [40, 200, 60]).astype(np.uint8)  # green noise "floor"
    Image.fromarray(plate).save(plates / "office.png")
    write_params(tmp_path, {"render": {**SMALL, "backgrounds": str(plates)}})
    res = run_stage("stages.detection.render", tmp_path, "--out", "out")
    assert res.returncode == 0, res.stderr[-2000:]
    rgb = load_rgb(tmp_path / "out/images/000000.png").astype(int)
    mask = np.asarray(Image.open(tmp_path / "out/masks/000000.png")) > 0
    bg = ~mask
    # Background pixels come from the plate (shadows may darken some), people do not.
    close = np.abs(rgb[bg] - plate[bg]).max(-1) <= 3
    assert close.mean() > 0.6
    assert read_coco(tmp_path / "out/coco.json").annotations


def test_obj_asset_is_loaded_and_annotated(tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    # object and material names in Latin-1, as an older exporter writes them: Blender echoes such names,
    # and the render stage's reader of the worker's output must survive bytes that are not UTF-8
    (assets / "box_person.obj").write_bytes(b"o caf\xe9_person\nusemtl tissu_\xe9t\xe9\n" + OBJ.encode())
    write_params(tmp_path, {"render": {**SMALL, "assets": str(assets)}})
    res = run_stage("stages.detection.render", tmp_path, "--out", "out")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "1/1" in res.stderr  # the progress reader saw the worker's "done" line
    coco = read_coco(tmp_path / "out/coco.json")
    assert coco.annotations
    for a in coco.annotations:  # head = top of the asset, projected through the fisheye
        x, y, w, h = a.bbox
        assert x - 2 <= a.head[0] <= x + w + 2 and y - 2 <= a.head[1] <= y + h + 2


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 40, "the asset yields no mesh"),                      # a binary file named .obj
    (b"v 0 0 0\nv 1 0 0\nv 0 1 1.7\nthis is not obj\n", "the asset's meshes have no faces"),  # garbled: points only
])
def test_an_asset_that_cannot_be_a_person_is_one_line_naming_it(tmp_path, content, message):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "broken.obj").write_bytes(content)
    write_params(tmp_path, {"render": {**SMALL, "assets": str(assets)}})
    res = run_stage("stages.detection.render", tmp_path, "--out", "out")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    error = res.stderr.strip().splitlines()[-1]
    assert error.startswith("error: render worker for shard 0 failed") and f"broken.obj: {message}" in error, error
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*")) and not list(tmp_path.glob("render-*"))


def test_missing_asset_folder_is_one_line(tmp_path):
    write_params(tmp_path, {"render": {**SMALL, "assets": str(tmp_path / "nope")}})
    res = run_stage("stages.detection.render", tmp_path, "--out", "out")
    assert res.returncode == 2 and "render.assets: folder" in res.stderr and "Traceback" not in res.stderr
