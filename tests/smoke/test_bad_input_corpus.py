"""Bad-input corpus (issue 20): every case runs a stage's ``main()`` in-process, as DVC would run it from the
project folder, and must fail cleanly: exit status 2, exactly one ``error:`` line (the last line of stderr)
naming the culprit, no traceback, and the previous outputs left byte-identical (no temp folders left).

Each case builds a small project folder (params.yaml from the repo's, the case's inputs) with previous
outputs of known content at every output path the stage is given, then calls the stage.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, bomb_png, write_params

# ---------------------------------------------------------------- helpers that build inputs


def _png(path: Path, w: int = 60, h: int = 40, mode: str = "RGB", value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (w, h), value if mode in ("L", "P") else (value, value, value)).save(path)
    return path


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png" * 4)
    return path


# --- user COCO folder for the ``real`` stage: src/user/{train,val,test}.json + images (60x40)
COCO_SRC = "src/user"


def _coco_split(split: str, with_mask: bool = False) -> dict:
    image = {"id": 1, "file_name": f"images/{split}.png", "width": 60, "height": 40}
    if with_mask:
        image["mask_file"] = f"masks/{split}.png"
    return {"images": [image],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 30],
                             "head_bbox": [12, 5, 8, 8], "keypoints": [16, 9, 2], "area": 600.0}]}


def _user_coco(proj: Path, mutate: Callable[[dict], object] | None = None, split: str = "train",
               with_mask: bool = False) -> Path:
    """A valid user COCO folder; ``mutate`` edits ``split``'s JSON before it is written."""
    root = proj / COCO_SRC
    for s in ("train", "val", "test"):
        _png(root / f"images/{s}.png")
        if with_mask:
            mask = np.zeros((40, 60), np.uint16)
            mask[5:35, 10:30] = 1
            (root / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / f"masks/{s}.png")
        data = _coco_split(s, with_mask)
        if s == split and mutate is not None:
            mutate(data)
        (root / f"{s}.json").write_text(json.dumps(data))
    return root


def _ann(d: dict) -> dict:
    return d["annotations"][0]


def _img(d: dict) -> dict:
    return d["images"][0]


# --- a COCO-contract box dataset for the ``crop`` stage (no masks needed)
def _box_dataset(root: Path, n: int = 2, w: int = 64, h: int = 48) -> Path:
    images, anns = [], []
    for i in range(n):
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[10:20, 20:32] = 255
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / f"images/{i:03d}.png")
        images.append({"id": i + 1, "file_name": f"images/{i:03d}.png", "width": w, "height": h})
        anns.append({"id": i + 1, "image_id": i + 1, "bbox": [20, 10, 12, 10], "head_bbox": [20, 10, 12, 10],
                     "keypoints": [26, 15, 2], "area": 120})
    (root / "coco.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return root


# --- MotionSense-style folder for ``sensor_prepare``
SENSOR_HEADER = "attitude.roll,userAcceleration.x,userAcceleration.y,userAcceleration.z"


def _motionsense(proj: Path, acts=("wlk_7", "jog_9"), subjects=(1, 2, 3), n=40) -> Path:
    root = proj / "src/motionsense"
    rng = np.random.default_rng(1)
    for act in acts:
        folder = root / "A_DeviceMotion_data" / act
        folder.mkdir(parents=True)
        for s in subjects:
            rows = [SENSOR_HEADER] + [",".join(f"{v:.5f}" for v in rng.normal(size=4)) for _ in range(n)]
            (folder / f"sub_{s}.csv").write_text("\n".join(rows) + "\n")
    return root


def _bad_sensor_csv(header: str, body: str) -> Callable[[Path], None]:
    def setup(proj: Path) -> None:
        root = _motionsense(proj)
        (root / "A_DeviceMotion_data/jog_9/sub_2.csv").write_text(header + "\n" + body)
    return setup


# --- an audio manifest for ``audio_synthesize``: src/audio/m.csv and the pairs it names
def _audio_pairs(proj: Path, rows: str, header: str = "audio,image,label,split",
                 broken_audio: tuple[str, ...] = ()) -> Path:
    import soundfile as sf

    root = proj / "src/audio"
    (root / "x").mkdir(parents=True)
    for i in range(2):
        sf.write(str(root / f"x/{i}.wav"), np.sin(np.arange(8000) / 5.0).astype(np.float32) * 0.1, 8000)
        _png(root / f"x/{i}.png", 24, 20)
    for name in broken_audio:
        (root / name).write_bytes(b"RIFF not really a wave file")
    (root / "m.csv").write_text(header + "\n" + rows)
    return root / "m.csv"


def _audio(rows: str, header: str = "audio,image,label,split", broken: tuple[str, ...] = ()):
    return lambda proj: _audio_pairs(proj, rows, header, broken)


# --- an image folder for ``anime_prepare``: src/faces/*.png (48x48 RGB)
def _faces(proj: Path, n: int = 6) -> Path:
    root = proj / "src/faces"
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (48, 48), (i * 30, 100, 100)).save(root / f"{i:02d}.png")
    return root


def _faces_then(action: Callable[[Path], object]) -> Callable[[Path], None]:
    def setup(proj: Path) -> None:
        action(_faces(proj))
    return setup


def _labels_csv(proj: Path) -> None:
    _faces(proj)
    (proj / "src/labels.csv").write_text("file,colour\n" + "".join(f"{i:02d}.png,red\n" for i in range(6)))


# --- downstream inputs written directly (no training)
def _sensor_prepared(proj: Path) -> None:
    from pipeline.sensor.data import WindowSet, save_windows

    prep = proj / "prep"
    prep.mkdir()
    rng = np.random.default_rng(0)
    for s in ("train", "val", "test"):
        save_windows(prep / f"{s}.npz", WindowSet(rng.normal(size=(4, 3, 200)), np.array([0, 1, 0, 1]),
                                                  np.array(["a", "a", "b", "b"])))
    (prep / "meta.json").write_text(json.dumps({
        "classes": ["jog", "wlk"], "channels": ["acc_x", "acc_y", "acc_z"], "rate_hz": 50.0, "window": 200,
        "minmax": {"lo": [-3.0] * 3, "hi": [3.0] * 3}, "zscore": {"mean": [0.0] * 3, "std": [1.0] * 3},
        "sources": {"train": ["a"], "val": ["a"], "test": ["b"]}}))


def _anime_prepared(proj: Path) -> None:
    from pipeline.anime.data import write_prepared
    from pipeline.anime.faces import draw_faces

    x, attrs = draw_faces(0, 12, supersample=1)
    names = [a["hair"] for a in attrs]
    write_prepared(proj / "prep", x, names, attrs, np.array(["train"] * 8 + ["test"] * 4),
                   {"classes": sorted(set(names)), "attribute": "hair"})


def _video_prepared(proj: Path) -> None:
    from pipeline.video.data import ClipSet, save_clips

    rng = np.random.default_rng(0)
    (proj / "prep").mkdir()
    for s in ("train", "test"):
        save_clips(proj / f"prep/{s}.npz", ClipSet(rng.integers(0, 256, (6, 1, 4, 16, 16), dtype=np.uint8),
                                                   np.arange(6) % 3))
    (proj / "prep/meta.json").write_text(json.dumps({"source": "moving_mnist", "label": "motion", "fps": 5.0,
                                                     "classes": ["a", "b", "c"], "shape": [1, 4, 16, 16]}))


def _write_video(path: Path, seconds: float = 1.0, fps: int = 10, size: int = 32) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), i * 20 % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _videos_with_a_broken_one(proj: Path) -> None:
    root = proj / "src/videos"
    for c in ("Jump", "Run"):
        for g in (1, 2):
            _write_video(root / c / f"v_{c}_g{g:02d}_c01.avi")
    (root / "Run/v_Run_g03_c01.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 20)


def _dup_key_params(proj: Path) -> None:
    text = (proj / "params.yaml").read_text()
    assert "\ncrop:\n" in text
    (proj / "params.yaml").write_text(text.replace("\ncrop:\n", "\ncrop:\n  offset: 0.25\n", 1))


def _latin1_params(proj: Path) -> None:
    """params.yaml saved by an editor in Latin-1 (a comment with an accent): not UTF-8."""
    path = proj / "params.yaml"
    path.write_bytes(b"# r\xe9glages du caf\xe9\n" + path.read_bytes())


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def setup(proj: Path) -> None:
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    return setup


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    id: str
    module: str  # the stage, e.g. stages.detection.crop
    args: tuple[str, ...]  # its argv (paths relative to the project folder); --metrics is added
    needles: tuple[str, ...]  # what the error line must contain (the culprit)
    params: dict = field(default_factory=dict)  # overrides of TINY params (None: write no params.yaml)
    setup: Callable[[Path], object] | None = None  # writes inputs (and may rewrite params.yaml)


REAL = ("stages.detection.real", ("--out", "data/real"))
REAL_P = {"real": {"source": COCO_SRC}}
CROP_ARGS = ("--synthetic", "data/render", "--real_train", "data/real/train", "--out", "data/crops")
SENSOR = ("stages.sensor.prepare", ("--out", "data/sensor/prepared"))
SENSOR_P = {"sensor_prepare": {"source": "src/motionsense"}}
AUDIO = ("stages.audio.synthesize", ("--out", "data/audio/pairs"))
AUDIO_P = {"audio_synthesize": {"source": "src/audio/m.csv"}}
ANIME = ("stages.anime.prepare", ("--out", "data/anime/prepared"))
ANIME_P = {"anime_prepare": {"source": "src/faces"}, "anime_train_gan": {"run": ["dcgan"]}}  # unlabelled
VIDEO = ("stages.video.prepare", ("--out", "data/video/prepared"))
SUB2 = "src/motionsense/A_DeviceMotion_data/jog_9/sub_2.csv"
ACC = "userAcceleration.x,userAcceleration.y,userAcceleration.z"


def _real(id_, needles, mutate=None, split="train", setup=None, with_mask=False):
    def build(proj):
        _user_coco(proj, mutate, split, with_mask)
        if setup is not None:
            setup(proj)
    return Case(id_, *REAL, needles, REAL_P, build)


def _symlink_out(proj: Path) -> None:
    _png(proj / "elsewhere.png")
    (proj / COCO_SRC / "images/link.png").symlink_to(proj / "elsewhere.png")


def _missing_file(rel: str) -> Callable[[Path], None]:
    return lambda proj: (proj / rel).unlink()


def _mask_wrong_size(proj: Path) -> None:
    Image.fromarray(np.zeros((20, 30), np.uint16)).save(proj / COCO_SRC / "masks/train.png")


def _parent_target(proj: Path) -> None:
    _png(proj / "x.png")  # exists, so only the containment check stands between it and a copy


CASES = [
    # ---- params.yaml
    Case("params_unknown_key", "stages.detection.render", ("--out", "data/render"), ("crop.sizee: unknown key",),
         {"crop": {"sizee": 3}}),
    Case("params_wrong_type", "stages.detection.crop", CROP_ARGS,
         ("crop.size: expected int >= 8 and a multiple of 4, got '128px'",), {"crop": {"size": "128px"}}),
    Case("params_empty", *SENSOR, ("params.yaml: empty params file",), None, _write("params.yaml", "")),
    Case("params_missing_sections", *SENSOR, ("params.yaml: missing params sections", "real"), None,
         _write("params.yaml", "render:\n  seed: 0\n")),
    Case("params_duplicate_key", "stages.detection.crop", CROP_ARGS, ("params.yaml line", "duplicate key 'offset'"),
         {}, _dup_key_params),
    Case("params_invalid_yaml", *SENSOR, ("params.yaml", "is not valid YAML"), None,
         _write("params.yaml", "render: [seed: 0\n")),
    Case("params_not_a_mapping", *SENSOR, ("params.yaml: expected a mapping of sections, got list",), None,
         _write("params.yaml", "- render\n- crop\n")),
    Case("params_unknown_section", *SENSOR, ("rendr: unknown params section",), {"rendr": {"seed": 1}}),
    Case("params_domain_bad_value", *SENSOR, ("sensor_train_gan.variants.x.augment", "'flip'"),
         {"sensor_train_gan": {"run": ["x"], "variants": {"x": {"augment": ["flip"]}}}}),
    Case("params_variant_not_run_bad_value", "stages.sensor.train_gan",
         ("--name", "x", "--seed", "0", "--prepared", "prep", "--out", "gans/x-0", "--plots", "plots/x-0.csv"),
         ("sensor_train_gan.variants.x.augment", "'flip'"),
         {"sensor_train_gan": {"variants": {"x": {"augment": ["flip"]}}}}, _sensor_prepared),
    Case("params_unknown_refiner_arch", "stages.detection.refine",
         ("--name", "nope", "--crops", "data/crops", "--out", "data/refined/nope", "--checkpoints", ".ck/nope"),
         ("refine.configs.nope.arch: unknown arch 'cyclegann' (known: identity",),
         {"refine": {"run": ["nope"], "configs": {"nope": {"arch": "cyclegann"}}}, "train_detector": {"sets": ["R"]}}),
    Case("params_detector_set_unknown_refiner", "stages.detection.train_detector",
         ("--set", "R", "--seed", "0", "--data", "data/sets", "--real", "data/real", "--out", "data/det/R-0",
          "--plots", "plots/R-0.csv"),
         ("train_detector.sets: 'R+C_CPCF': unknown part 'C_CPCF'",), {"train_detector": {"sets": ["R", "R+C_CPCF"]}}),
    Case("params_not_utf8", *SENSOR, ("params.yaml",), {}, _latin1_params),
    Case("params_infinite_float", *SENSOR, ("sensor_prepare.rate_hz",), {"sensor_prepare": {"rate_hz": float("inf")}}),
    Case("params_bad_seed_arg", "stages.anime.train_gan",
         ("--name", "dcgan", "--seed", "-1", "--prepared", "prep", "--out", "gans/dcgan--1", "--checkpoints", "ck",
          "--plots", "plots/m.csv"),
         ("--seed: expected an int >= 0, got '-1'",), {"anime_train_gan": {"run": ["dcgan"]}}),
    Case("params_bad_seed_not_a_number", "stages.sensor.train_gan",
         ("--name", "dcgan", "--seed", "x1", "--prepared", "prep", "--out", "gans/dcgan-x1", "--plots", "plots/d.csv"),
         ("--seed: expected an int >= 0, got 'x1'",)),
    Case("params_wgan_gp_with_batch_norm", "stages.video.train_gan",
         ("--name", "wgan_gp", "--seed", "0", "--prepared", "prep", "--out", "gans/wgan_gp-0",
          "--plots", "plots/w.csv"),
         ("video_train_gan.variants.wgan_gp.norm: a WGAN-GP critic cannot use batch norm",),
         {"video_train_gan": {"variants": {"wgan_gp": {"loss": "wgan-gp", "norm": "batch"}}}}),
    Case("weights_missing_vgg", "stages.detection.refine",
         ("--name", "C_CPCF", "--crops", "data/crops", "--out", "data/refined/C_CPCF", "--checkpoints", ".ck/C"),
         ("refine.configs.C_CPCF", "nowhere.pth", "vgg16-397923af.pth"),
         {"refine": {"run": ["C_CPCF"], "vgg_weights": "nowhere.pth"}, "train_detector": {"sets": ["R"]}}),
    Case("weights_missing_squeezenet", "stages.detection.train_detector",
         ("--set", "R", "--seed", "0", "--data", "no_data_here", "--real", "no_data_here", "--out", "data/det/R-0",
          "--plots", "plots/R-0.csv"),
         ("nowhere.pth", "squeezenet1_1-b8a52dc0.pth", "train_detector.backbone_weights"),
         {"train_detector": {"pretrained": True, "width": 1.0, "batch_norm": False,
                             "backbone_weights": "nowhere.pth"}}),
    Case("weights_missing_inception", "stages.detection.evaluate",
         ("--crops", "a", "--refined", "b", "--synthetic", "c", "--reinserted", "d", "--detectors", "e",
          "--runs", "f", "--refiners", "h", "--out", "data/evaluation"),
         ("inception.pth", "pt_inception-2015-12-05-6726825d.pth", "evaluate.inception_weights"),
         {"evaluate": {"inception_weights": "inception.pth"}}),
    # ---- user COCO through the real stage
    Case("real_source_missing", *REAL, ("real.source: folder", "does not exist"), {"real": {"source": "nowhere"}}),
    _real("coco_malformed_json", ("train.json: malformed COCO JSON",),
          setup=_write(f"{COCO_SRC}/train.json", '{"images": [')),
    _real("coco_not_utf8", ("train.json: malformed COCO JSON",),
          setup=lambda proj: (proj / COCO_SRC / "train.json").write_bytes(b'{"images": "caf\xe9"}')),
    _real("coco_top_level_list", ("train.json: not a COCO file",), setup=_write(f"{COCO_SRC}/train.json", "[]")),
    _real("coco_missing_file", ("val.json: COCO file not found",), setup=_missing_file(f"{COCO_SRC}/val.json")),
    _real("coco_not_coco", ("train.json: not a COCO file",), setup=_write(f"{COCO_SRC}/train.json", '{"foo": []}')),
    _real("coco_visibility_string", ("train.json: annotations[0] (id 1).keypoints[2]: Input should be a valid number, "
                                     "got '2'",), lambda d: _ann(d)["keypoints"].__setitem__(2, "2")),
    _real("coco_image_id_list", ("train.json: annotations[0] (id 1).image_id: Input should be a valid integer, "
                                 "got [1]",), lambda d: _ann(d).update(image_id=[1])),
    _real("coco_area_string", ("train.json: annotations[0] (id 1).area: Input should be a valid number, got 'big'",),
          lambda d: _ann(d).update(area="big")),
    _real("coco_nan_keypoint", ("train.json: annotations[0] (id 1).keypoints[0]: Input should be a finite number",),
          lambda d: _ann(d)["keypoints"].__setitem__(0, float("nan"))),
    _real("coco_keypoint_outside", ("train.json: annotation 1 head keypoint (70, 9) is outside image 1 (60x40)",),
          lambda d: _ann(d).update(keypoints=[70, 9, 2])),
    _real("coco_bbox_outside", ("train.json: annotation 1 bbox [50.0, 5.0, 20.0, 30.0] is empty or outside image 1",),
          lambda d: _ann(d).update(bbox=[50, 5, 20, 30])),
    _real("coco_bbox_zero_size", ("train.json: annotation 1 head_bbox [12.0, 5.0, 0.0, 8.0] is empty",),
          lambda d: _ann(d).update(head_bbox=[12, 5, 0, 8])),
    _real("coco_duplicate_image_id", ("train.json: duplicate image id 1",),
          lambda d: d["images"].append(dict(_img(d)))),
    _real("coco_duplicate_ann_id", ("train.json: duplicate annotation id 1",),
          lambda d: d["annotations"].append(dict(_ann(d)))),
    _real("coco_dangling_image_id", ("train.json: annotation 1 refers to unknown image_id 9",),
          lambda d: _ann(d).update(image_id=9)),
    _real("coco_missing_image", ("train.json: image 1 file_name", "missing.png does not exist"),
          lambda d: _img(d).update(file_name="images/missing.png")),
    _real("coco_parent_path", ("train.json: image 1 file_name '../../x.png' points outside",),
          lambda d: _img(d).update(file_name="../../x.png"), setup=_parent_target),
    _real("coco_absolute_path", ("train.json: image 1 file_name", "is an absolute path"),
          lambda d: _img(d).update(file_name=str(ROOT / "README.md"))),
    _real("coco_symlink_escape", ("train.json: image 1 file_name 'images/link.png' points outside",),
          lambda d: _img(d).update(file_name="images/link.png"), setup=_symlink_out),
    _real("coco_mask_wrong_size", ("train.json: image 1 mask masks/train.png is", "on disk but 60x40 in the JSON"),
          with_mask=True,
          setup=_mask_wrong_size),
    _real("coco_corrupt_mask", ("masks/train.png: unreadable or corrupt instance mask",), with_mask=True,
          setup=lambda proj: _corrupt(proj / COCO_SRC / "masks/train.png")),
    _real("coco_corrupt_image", ("images/train.png: unreadable or corrupt image",),
          setup=lambda proj: _corrupt(proj / COCO_SRC / "images/train.png")),
    _real("coco_decompression_bomb", ("images/train.png: image is larger than", "over the limit of 64000000 pixels"),
          setup=lambda proj: bomb_png(proj / COCO_SRC / "images/train.png")),
    _real("coco_size_differs", ("train.json: image 1 file images/train.png is 50x40 on disk but 60x40 in the JSON",),
          setup=lambda proj: _png(proj / COCO_SRC / "images/train.png", 50, 40)),
    _real("coco_empty_split", ("test.json: empty split",), lambda d: d.update(images=[], annotations=[]),
          split="test"),
    # ---- crop
    Case("crop_missing_coco", "stages.detection.crop", CROP_ARGS, ("data/render/coco.json: COCO file not found",)),
    Case("crop_corrupt_image", "stages.detection.crop", CROP_ARGS, ("images/001.png: unreadable or corrupt image",),
         {}, lambda proj: (_box_dataset(proj / "data/render"), _box_dataset(proj / "data/real/train"),
                           _corrupt(proj / "data/render/images/001.png"))),
    Case("crop_image_size_differs", "stages.detection.crop", CROP_ARGS,
         ("data/render/coco.json: image 2 file images/001.png is 60x48 on disk but 64x48 in the JSON",), {},
         lambda proj: (_box_dataset(proj / "data/render"), _box_dataset(proj / "data/real/train"),
                       Image.new("RGB", (60, 48)).save(proj / "data/render/images/001.png"))),
    Case("crop_empty_split", "stages.detection.crop", CROP_ARGS, ("data/real/train/coco.json: empty split",), {},
         lambda proj: (_box_dataset(proj / "data/render"),
                       _write("data/real/train/coco.json", '{"images": [], "annotations": []}')(proj))),
    # ---- sensor (MotionSense folder)
    Case("sensor_source_not_a_folder", *SENSOR, ("sensor_prepare.source: 'no/such/MotionSense' is neither",),
         {"sensor_prepare": {"source": "no/such/MotionSense"}}),
    Case("sensor_no_activity_folders", *SENSOR, ("src/motionsense: no <activity>_<trial> folders",), SENSOR_P,
         lambda proj: (proj / "src/motionsense").mkdir(parents=True)),
    Case("sensor_unknown_activity", *SENSOR, ("fly_1: unknown activity 'fly'",), SENSOR_P,
         lambda proj: _motionsense(proj, acts=("wlk_7", "fly_1"))),
    Case("sensor_csv_missing_column", *SENSOR, ("sub_2.csv: MotionSense CSV lacks column 'userAcceleration.z'",),
         SENSOR_P, _bad_sensor_csv("userAcceleration.x,userAcceleration.y", "1,2\n")),
    Case("sensor_csv_short_row", *SENSOR, ("sub_2.csv: row 3 has fewer fields than the header "
                                           "(no 'userAcceleration.z')",), SENSOR_P,
         _bad_sensor_csv(ACC, "1,2,3\n4,5\n")),
    Case("sensor_csv_extra_field", *SENSOR, ("sub_2.csv: row 3 has more fields than the header",), SENSOR_P,
         _bad_sensor_csv(ACC, "1,2,3\n4,5,6,7\n")),
    Case("sensor_csv_nan", *SENSOR, ("sub_2.csv: row 3 column 'userAcceleration.y': Input should be a finite number",),
         SENSOR_P, _bad_sensor_csv(ACC, "1,2,3\n4,nan,6\n")),
    Case("sensor_csv_not_numeric", *SENSOR, ("sub_2.csv: row 2 column 'userAcceleration.y': Input should be a valid "
                                             "number",), SENSOR_P, _bad_sensor_csv(ACC, "1,x,3\n")),
    Case("sensor_csv_not_utf8", *SENSOR, ("sub_2.csv: unreadable MotionSense CSV",), SENSOR_P,
         lambda proj: (_motionsense(proj), (proj / SUB2).write_bytes(ACC.encode() + b"\n1,2,\xe93\n"))),
    Case("sensor_csv_header_only", *SENSOR, ("sub_2.csv: MotionSense CSV has no rows",), SENSOR_P,
         _bad_sensor_csv(ACC, "")),
    Case("sensor_one_subject", *SENSOR, ("sensor_prepare: too few sources to split into train and test",), SENSOR_P,
         lambda proj: _motionsense(proj, subjects=(1,))),
    # ---- audio (CSV manifest)
    Case("audio_manifest_missing_column", *AUDIO, ("m.csv: CSV manifest lacks column 'image'",), AUDIO_P,
         _audio("x/0.wav,a\n", header="audio,label")),
    Case("audio_manifest_short_row", *AUDIO, ("m.csv: row 2 has fewer fields than the header (no 'label')",), AUDIO_P,
         _audio("x/0.wav,x/0.png\n", header="audio,image,label")),
    Case("audio_manifest_empty_audio", *AUDIO, ("m.csv: row 2 column 'audio': String should have at least 1 "
                                                "character",), AUDIO_P, _audio(",x/0.png,a,train\n")),
    Case("audio_manifest_parent_path", *AUDIO, ("m.csv: row 2 audio '../0.wav' points outside",), AUDIO_P,
         _audio("../0.wav,x/0.png,a,train\n")),
    Case("audio_manifest_absolute_image", *AUDIO, ("m.csv: row 3 image", "is an absolute path"), AUDIO_P,
         _audio(f"x/0.wav,x/0.png,a,train\nx/1.wav,{ROOT / 'README.md'},a,test\n")),
    Case("audio_unreadable_audio", *AUDIO, ("x/1.wav: unreadable audio",), AUDIO_P,
         _audio("x/0.wav,x/0.png,a,train\nx/1.wav,x/1.png,a,test\n", broken=("x/1.wav",))),
    Case("audio_missing_audio", *AUDIO, ("x/9.wav: audio file not found",), AUDIO_P,
         _audio("x/0.wav,x/0.png,a,train\nx/9.wav,x/1.png,a,test\n")),
    Case("audio_bad_split", *AUDIO, ("m.csv:3: split 'validation' is not one of train, test",), AUDIO_P,
         _audio("x/0.wav,x/0.png,a,train\nx/1.wav,x/1.png,a,validation\n")),
    Case("audio_source_missing", *AUDIO, ("audio_synthesize.source: 'nope.csv' is neither",),
         {"audio_synthesize": {"source": "nope.csv"}}),
    Case("audio_corrupt_image", *AUDIO, ("x/1.png: unreadable or corrupt image",), AUDIO_P,
         lambda proj: (_audio_pairs(proj, "x/0.wav,x/0.png,a,train\nx/1.wav,x/1.png,a,test\n"),
                       _corrupt(proj / "src/audio/x/1.png"))),
    Case("audio_no_test_pairs", *AUDIO, ("src/audio/m.csv: no test pairs",), AUDIO_P,
         _audio("x/0.wav,x/0.png,a,train\n")),
    # ---- anime (image folder)
    Case("anime_image_too_small", *ANIME, ("small.png: 16x16 pixels, smaller than anime_prepare.min_size = 32",),
         ANIME_P, _faces_then(lambda root: _png(root / "small.png", 16, 16))),
    Case("anime_corrupt_image", *ANIME, ("03.png: unreadable or corrupt image",), ANIME_P,
         _faces_then(lambda root: _corrupt(root / "03.png"))),
    Case("anime_decompression_bomb", *ANIME, ("bomb.png: image is larger than", "over the limit of 64000000 pixels"),
         ANIME_P, _faces_then(lambda root: bomb_png(root / "bomb.png"))),
    Case("anime_labels_csv_missing_column", *ANIME, ("labels.csv: CSV lacks column 'hair'",),
         {**ANIME_P, "anime_prepare": {**ANIME_P["anime_prepare"], "labels": "src/labels.csv"}}, _labels_csv),
    Case("anime_non_rgb_rejected", *ANIME, ("grey.png: image mode L, not RGB (anime_prepare.non_rgb is reject)",),
         {**ANIME_P, "anime_prepare": {**ANIME_P["anime_prepare"], "non_rgb": "reject"}},
         _faces_then(lambda root: _png(root / "grey.png", 48, 48, "L"))),
    Case("anime_empty_folder", *ANIME, ("src/faces: no images",), ANIME_P,
         lambda proj: (proj / "src/faces").mkdir(parents=True)),
    Case("anime_labels_csv_missing_row", *ANIME, ("src/labels.csv: no row for image '01.png'",),
         {**ANIME_P, "anime_prepare": {**ANIME_P["anime_prepare"], "labels": "src/labels.csv"}},
         lambda proj: (_faces(proj), _write("src/labels.csv", "file,hair\n00.png,red\n")(proj))),
    # ---- video (class folders)
    Case("video_undecodable", *VIDEO, ("v_Run_g03_c01.avi: undecodable video",),
         {"video_prepare": {"source": "src/videos", "channels": 1}}, _videos_with_a_broken_one),
    Case("video_empty_folder", *VIDEO, ("src/videos: no <class>/ folders of videos",),
         {"video_prepare": {"source": "src/videos"}}, lambda proj: (proj / "src/videos").mkdir(parents=True)),
    Case("video_source_not_a_folder", *VIDEO,
         ("video_prepare.source: 'nowhere' is neither 'moving_mnist' nor a folder",),
         {"video_prepare": {"source": "nowhere"}}),
    Case("video_no_video_files", *VIDEO, ("src/videos: no video files",), {"video_prepare": {"source": "src/videos"}},
         _write("src/videos/Jump/notes.txt", "not a video")),
    # ---- render (fails before Blender starts)
    Case("render_assets_missing", "stages.detection.render", ("--out", "data/render"),
         ("render.assets: folder", "does not exist"), {"render": {"assets": "no/assets"}}),
    Case("render_assets_empty", "stages.detection.render", ("--out", "data/render"),
         ("render.assets: no .blend/.obj/.fbx files in assets",), {"render": {"assets": "assets"}},
         lambda proj: (proj / "assets").mkdir()),
    Case("render_corrupt_background", "stages.detection.render", ("--out", "data/render"),
         ("plates/bad.png: unreadable or corrupt image",), {"render": {"backgrounds": "plates"}},
         lambda proj: _corrupt(proj / "plates/bad.png")),
    # ---- stages whose inputs were never made
    Case("sensor_classify_without_gan_samples", "stages.sensor.classify",
         ("--prepared", "prep", "--gans", "gans", "--out", "reports/sensor"),
         ("gans/dcgan-0/samples.npz: not found (run sensor_train_gan@dcgan-0)",), {}, _sensor_prepared),
    Case("sensor_train_gan_without_prepared", "stages.sensor.train_gan",
         ("--name", "dcgan", "--seed", "0", "--prepared", "prep", "--out", "gans/dcgan-0", "--plots",
          "plots/dcgan-0.csv"),
         ("prep/meta.json: not found (run the sensor_prepare stage)",)),
    Case("anime_classify_without_gan_samples", "stages.anime.classify",
         ("--prepared", "prep", "--gans", "gans", "--out", "reports/anime"),
         ("gans/dcgan-0/samples.npz: not found (run anime_train_gan@dcgan-0)",), {}, _anime_prepared),
    Case("video_classify_without_gan_samples", "stages.video.classify",
         ("--prepared", "prep", "--gans", "gans", "--out", "reports/video"),
         ("gans/inflated-0/samples.npz: not found (run video_train_gan@inflated-0)",), {}, _video_prepared),
    Case("audio_features_without_pairs", "stages.audio.features", ("--pairs", "pairs", "--out", "features"),
         ("pairs/meta.json: not found (run the audio_synthesize stage)",)),
    Case("video_train_gan_without_prepared", "stages.video.train_gan",
         ("--name", "inflated", "--seed", "0", "--prepared", "prep", "--out", "gans/inflated-0", "--plots",
          "plots/inflated-0.csv"),
         ("prep/meta.json: not found (run the video_prepare stage)",)),
    Case("reinsert_without_refined_crops", "stages.detection.reinsert",
         ("--name", "identity", "--dataset", "data/render", "--crops", "data/crops/synthetic", "--refined",
          "data/refined/identity", "--out", "data/reinserted/identity"),
         ("data/refined/identity/manifest.csv",), {}, lambda proj: _box_dataset(proj / "data/render")),
    Case("reinsert_manifest_bad_value", "stages.detection.reinsert",
         ("--name", "identity", "--dataset", "data/render", "--crops", "data/crops/synthetic", "--refined",
          "data/refined/identity", "--out", "data/reinserted/identity"),
         ("data/refined/identity/manifest.csv: row 2 column 'cx'", "'abc'"), {},
         lambda proj: (_box_dataset(proj / "data/render"),
                       _png(proj / "data/refined/identity/crops/000001.png", 48, 48),
                       _write("data/refined/identity/manifest.csv",
                              "crop_file,source_image,image_id,ann_id,cx,cy,angle,size\n"
                              "crops/000001.png,images/000.png,1,1,abc,15,0,48\n")(proj))),
]

# ---------------------------------------------------------------- running a stage in-process

OUTPUT_FLAGS = ("--out", "--metrics", "--plots", "--checkpoints")
IGNORED_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _previous_outputs(proj: Path, args: tuple[str, ...]) -> None:
    """Known content at every output path the stage is given, as a previous good run would have left."""
    for flag, value in zip(args, args[1:]):
        if flag in OUTPUT_FLAGS:
            path = proj / value
            if path.suffix in (".json", ".csv"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"previous {flag} of {value}\n")
            else:
                (path / "sub").mkdir(parents=True, exist_ok=True)
                (path / "previous.txt").write_text(f"previous {flag} {value}\n")
                (path / "sub/result.bin").write_bytes(bytes(range(256)))


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file (content) and symlink (target) under ``root``; folders count only when they hold files,
    so an empty ``out.parent`` made by mkdir is not a change, but a leftover temp folder with files is."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes()
    return out


def _run_in_process(module: str, args: list[str], capsys) -> tuple[int | None, str]:
    """Import ``module`` and call its ``main()`` as ``python -m module *args`` would; returns the exit status
    and stderr (with the warnings Python would print, and the traceback of an uncaught exception)."""
    mod = importlib.import_module(module)
    old_argv = sys.argv
    sys.argv = [module.rsplit(".", 1)[-1] + ".py", *args]
    code: int | None
    extra = ""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            for cat in IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", category=cat)
            try:
                mod.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) or exc.code is None else 1
                if exc.code is not None and not isinstance(exc.code, int):
                    extra += f"{exc.code}\n"
            except BaseException:  # noqa: BLE001 - what the interpreter would print
                code = 1
                extra += traceback.format_exc()
    finally:
        sys.argv = old_argv
    err = capsys.readouterr().err
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
    return code, shown + err + extra


@pytest.fixture(scope="module")
def _mlflow_store(tmp_path_factory) -> str:
    """One sqlite store for the whole corpus (its schema is migrated once, not per case)."""
    return f"sqlite:///{tmp_path_factory.mktemp('corpus_mlflow')}/mlflow.db"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, capsys, _mlflow_store):
    proj = tmp_path / "proj"
    proj.mkdir()
    if case.params is not None:
        write_params(proj, case.params)
    if case.setup is not None:
        case.setup(proj)
    args = [*case.args, "--metrics", "metrics/stage.json"]
    _previous_outputs(proj, tuple(args))
    before, around = _snapshot(proj), sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(proj)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _mlflow_store)
    monkeypatch.delenv("PIPELINE_PARENT_RUN_ID", raising=False)
    monkeypatch.delenv("PIPELINE_ERROR_FILE", raising=False)

    code, stderr = _run_in_process(case.module, args, capsys)

    tail = stderr[-1500:]
    assert code == 2, f"exit {code}\n{tail}"
    # progress bars may precede it, but the error itself is exactly one line, and the last
    lines = [ln for ln in stderr.strip().splitlines() if "it/s]" not in ln and "/s]" not in ln]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], tail
    assert "Traceback" not in stderr, tail
    for needle in case.needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    # nothing written, changed or left behind: previous outputs byte-identical, no temp folders
    after = _snapshot(proj)
    assert after == before, (f"changed: {sorted(k for k in set(before) & set(after) if before[k] != after[k])}, "
                             f"new: {sorted(set(after) - set(before))}, gone: {sorted(set(before) - set(after))}")
    assert not [p for p in proj.rglob(".*tmp-*")], "temp outputs left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == around, "something was written beside the project"
