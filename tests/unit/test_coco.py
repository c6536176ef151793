import json

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.io.coco import Coco, CocoAnn, CocoImage, read_coco, write_coco
from pipeline.io.images import load_rgb
from tests.conftest import bomb_png


def _good(tmp_path):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "a.png")
    coco = Coco([CocoImage(1, "a.png", 60, 40)],
                [CocoAnn(1, 1, [10, 5, 20, 30], [12, 5, 8, 8], [16, 9, 2], 600.0)])
    write_coco(tmp_path / "train.json", coco)
    return json.loads((tmp_path / "train.json").read_text())


def test_round_trip(tmp_path):
    data = _good(tmp_path)
    coco = read_coco(tmp_path / "train.json", image_root=tmp_path)
    assert coco.annotations[0].head == (16, 9)
    assert data["categories"][0]["name"] == "person" and data["annotations"][0]["num_keypoints"] == 1


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["annotations"][0].update(bbox=[50, 5, 20, 30]), "annotation 1 bbox [50.0, 5.0, 20.0, 30.0] is empty or outside image 1"),
    (lambda d: d["annotations"][0].update(head_bbox=None), "annotations[0] (id 1).head_bbox: Input should be a valid list"),
    (lambda d: d["annotations"][0].update(keypoints=[]), "annotations[0] (id 1).keypoints: List should have at least 3 items"),
    (lambda d: d["annotations"][0].update(keypoints=[16, 9, 0]), "annotation 1 has no visible head keypoint"),
    (lambda d: d["annotations"][0].update(image_id=9), "annotation 1 refers to unknown image_id 9"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0])), "duplicate annotation id 1"),
    (lambda d: d["annotations"][0].pop("id"), "annotations[0].id: Field required"),
    (lambda d: d["images"].clear() or d["annotations"].clear(), "empty split"),
    (lambda d: d["images"][0].update(file_name="missing.png"), "missing.png does not exist"),
    (lambda d: d.pop("images"), "not a COCO file"),
    # wrong types and non-finite numbers, named by record and field (issue 20)
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(2, "2"), "annotations[0] (id 1).keypoints[2]: Input should be a valid number, got '2'"),
    (lambda d: d["annotations"][0].update(image_id=[1]), "annotations[0] (id 1).image_id: Input should be a valid integer, got [1]"),
    (lambda d: d["annotations"][0].update(area="big"), "annotations[0] (id 1).area: Input should be a valid number, got 'big'"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, float("nan")), "annotations[0] (id 1).keypoints[0]: Input should be a finite number"),
    (lambda d: d["annotations"][0]["bbox"].__setitem__(2, float("inf")), "annotations[0] (id 1).bbox[2]: Input should be a finite number"),
    (lambda d: d["annotations"][0].update(keypoints=[70, 9, 2]), "annotation 1 head keypoint (70, 9) is outside image 1 (60x40)"),
    (lambda d: d["images"][0].update(width="60"), "images[0] (id 1).width: Input should be a valid integer, got '60'"),
    # paths from user data stay inside the dataset root
    (lambda d: d["images"][0].update(file_name="../../x.png"), "image 1 file_name '../../x.png' points outside"),
    (lambda d: d["images"][0].update(file_name="/etc/hostname"), "image 1 file_name '/etc/hostname' is an absolute path"),
    (lambda d: d["images"][0].update(mask_file="../m.png"), "image 1 mask_file '../m.png' points outside"),
])
def test_invalid_coco_names_culprit(tmp_path, mutate, message):
    data = _good(tmp_path)
    mutate(data)
    (tmp_path / "train.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError) as err:
        read_coco(tmp_path / "train.json", image_root=tmp_path)
    assert message in str(err.value) and "train.json" in str(err.value)


def test_malformed_and_missing_json(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(PipelineError, match="x.json: malformed COCO JSON"):
        read_coco(tmp_path / "x.json")
    with pytest.raises(PipelineError, match="nope.json: COCO file not found"):
        read_coco(tmp_path / "nope.json")


def test_corrupt_image_names_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(PipelineError, match="bad.png: unreadable or corrupt image"):
        load_rgb(tmp_path / "bad.png")


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    data = _good(tmp_path)
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")  # inside: fine
    data["images"][0]["file_name"] = "link.png"
    (tmp_path / "train.json").write_text(json.dumps(data))
    read_coco(tmp_path / "train.json", image_root=tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.png").symlink_to(tmp_path / "a.png")  # escapes root
    (root / "train.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match=r"train.json: image 1 file_name 'link.png' points outside"):
        read_coco(root / "train.json", image_root=root)


@pytest.mark.parametrize("size", [(20000, 20000), (9000, 8000)])  # PIL's own error, and under PIL's limit
def test_a_decompression_bomb_is_one_line_with_the_size_and_the_limit(tmp_path, size):
    from pipeline.anime.data import load_face
    from pipeline.io.images import load_mask

    bomb = bomb_png(tmp_path / "bomb.png", *size)
    for load in (load_rgb, load_mask, lambda p: load_face(p, 64, 32, "convert")):
        with pytest.raises(PipelineError, match=r"bomb.png: image is .* over the limit of 64000000 pixels") as err:
            load(bomb)
        assert "\n" not in str(err.value)
    with pytest.raises(PipelineError, match=f"image is {size[0]}x{size[1]} = {size[0] * size[1]} pixels"
                       if size[0] * size[1] < 2 * Image.MAX_IMAGE_PIXELS else "larger than"):
        load_rgb(bomb)
