import json

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.io.coco import Coco, CocoAnn, CocoImage, read_coco, write_coco
from pipeline.io.images import load_rgb


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
    (lambda d: d["annotations"][0].update(bbox=[50, 5, 20, 30]), "annotation 1 bbox [50, 5, 20, 30] is missing or outside image 1"),
    (lambda d: d["annotations"][0].update(head_bbox=None), "annotation 1 head_bbox None"),
    (lambda d: d["annotations"][0].update(keypoints=[]), "annotation 1 has no visible head keypoint"),
    (lambda d: d["annotations"][0].update(image_id=9), "annotation 1 refers to unknown image_id 9"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0])), "annotation id 1 is missing"),
    (lambda d: d["images"].clear() or d["annotations"].clear(), "empty split"),
    (lambda d: d["images"][0].update(file_name="missing.png"), "missing.png does not exist"),
    (lambda d: d.pop("images"), "not a COCO file"),
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
