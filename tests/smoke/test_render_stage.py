"""Render and real stages on tiny settings: real Blender renders, checked annotations."""

import json
import subprocess

import numpy as np

from pipeline.io.coco import read_coco
from pipeline.io.images import load_mask, load_rgb
from pipeline.detection.render.annotate import sphere_box
from pipeline.detection.render.fisheye import Fisheye
from tests.conftest import run_stage, write_params


def test_render_outputs_match_the_data_contract(rendered):
    root = rendered / "data/render"
    coco = read_coco(root / "coco.json", image_root=root)
    assert len(coco.images) == 3 and len(coco.annotations) >= 3
    by_image = {}
    for a in coco.annotations:
        by_image.setdefault(a.image_id, []).append(a)
    for im in coco.images:
        mask = load_mask(root / im.mask_file)
        assert load_rgb(root / im.file_name).shape == (im.height, im.width, 3) == mask.shape + (3,)
        ids = {a.id for a in by_image.get(im.id, [])}
        assert set(np.unique(mask)) - {0} == ids  # every mask value is an annotation of this image
        for a in by_image.get(im.id, []):
            ys, xs = np.nonzero(mask == a.id)
            assert a.bbox == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
            x, y, w, h = a.head_bbox
            px, py, pw, ph = a.bbox
            assert px <= x and py <= y and x + w <= px + pw and y + h <= py + ph
            if a.keypoints[2] == 2:  # head visible: its keypoint falls inside its head box (+1 px)
                assert x - 1 <= a.head[0] <= x + w + 1 and y - 1 <= a.head[1] <= y + h + 1


def test_head_boxes_agree_with_projected_head_spheres(rendered):
    params = json.loads(json.dumps(__import__("yaml").safe_load((rendered / "params.yaml").read_text())))
    cam = params["render"]["camera"]
    fish = Fisheye(cam["width"], cam["height"], cam["lens_mm"], cam["sensor_mm"], cam["fov_deg"],
                   (0.0, 0.0, cam["mount_m"]))
    coco = read_coco(rendered / "data/render/coco.json")
    checked = 0
    for a in coco.annotations:
        if a.keypoints[2] == 2 and a.extra["head_visible_px"] >= 8:
            pred = sphere_box(fish, np.array(a.extra["head_3d"]), 0.11)
            # Hair makes the rendered head a little larger than the bare skull sphere.
            assert abs((a.head_bbox[0] + a.head_bbox[2] / 2) - (pred[0] + pred[2] / 2)) < 2
            assert abs((a.head_bbox[1] + a.head_bbox[3] / 2) - (pred[1] + pred[3] / 2)) < 2
            checked += 1
    assert checked >= 3


def test_real_demo_splits(rendered):
    sizes = {}
    for split in ("train", "val", "test"):
        coco = read_coco(rendered / "data/real" / split / "coco.json", image_root=rendered / "data/real" / split)
        sizes[split] = len(coco.images)
        assert coco.info["profile"] == "demo_real"
    assert sizes == {"train": 2, "val": 1, "test": 1}


def test_user_real_data_is_validated_and_imported(rendered, tmp_path):
    src = tmp_path / "user"
    src.mkdir()
    for split in ("train", "val", "test"):
        d = rendered / "data/real" / split
        subprocess.run(["cp", "-r", str(d / "images"), str(d / "masks"), str(src)], check=True)
        (src / f"{split}.json").write_text((d / "coco.json").read_text())
    work = tmp_path / "w"
    work.mkdir()
    write_params(work, {"real": {"source": str(src)}})
    res = run_stage("stages.detection.real", work, "--out", "out")
    assert res.returncode == 0, res.stderr[-1500:]
    assert read_coco(work / "out/train/coco.json", image_root=work / "out/train").images
    bad = json.loads((src / "val.json").read_text())
    bad["annotations"][0]["bbox"] = [-50, 0, 10, 10]
    (src / "val.json").write_text(json.dumps(bad))
    res = run_stage("stages.detection.real", work, "--out", "out2")
    assert res.returncode == 2
    assert "val.json: annotation" in res.stderr and "outside image" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (work / "out2").exists()
