"""Training-set grammar, composition with mix ratios, resizing and flips keeping boxes on their pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.detection.detector.data import DetectionData, PatchData
from pipeline.detection.detector.sets import (Part, compose, load_phases, load_samples, load_set, materialise,
                                              parse_phases, parse_set)
from pipeline.errors import PipelineError
from pipeline.params import parse_params
from tests.conftest import write_box_dataset

REFINERS = ["C_CP_S", "D_S_noVGG"]


def test_parse_set_grammar():
    assert parse_set("S", REFINERS) == (Part("S"),)
    assert parse_set("R+C_CP_S", REFINERS) == (Part("R"), Part("C_CP_S"))
    assert parse_set("R+0.5xC_CP_S+2xS", REFINERS) == (Part("R"), Part("C_CP_S", 0.5), Part("S", 2.0))


def test_pretrain_then_finetune_grammar():
    assert parse_phases("R+S", REFINERS) == ((Part("R"), Part("S")),)
    assert parse_phases("C_CP_S+S>R", REFINERS) == ((Part("C_CP_S"), Part("S")), (Part("R"),))
    assert parse_set("R+0.5xS>R", REFINERS) == (Part("R"), Part("S", 0.5))  # every source once


@pytest.mark.parametrize("name, message", [
    ("R+X", "unknown part 'X'"),
    ("2xR", "R takes no '<k>x' ratio"),
    ("R+R", "R appears twice"),
    ("R+", "part '' is not"),
    ("R+0xS", "must be > 0"),
    ("R S", "is not '[<k>x]NAME'"),
    ("S>R>R", "at most one '>'"),
    ("S>", "part '' is not"),
    ("S>X", "unknown part 'X'"),
])
def test_parse_set_errors_name_the_key_and_set(name, message):
    with pytest.raises(PipelineError, match="train_detector.sets") as err:
        parse_set(name, REFINERS)
    assert message in str(err.value) and name in str(err.value)


def test_params_reject_sets_that_name_refiners_not_run():
    with pytest.raises(PipelineError, match="unknown part 'C_CP'"):
        parse_params({"refine": {"run": ["identity"]}, "train_detector": {"sets": ["R", "R+C_CP"]}})
    with pytest.raises(PipelineError, match="reserved"):
        parse_params({"refine": {"run": ["R"], "configs": {"R": {"arch": "identity"}}}})
    with pytest.raises(PipelineError, match="train_detector.input_size: expected .*multiples of 16"):
        parse_params({"train_detector": {"input_size": [100, 448]}})
    with pytest.raises(PipelineError, match="evaluate.seeds"):
        parse_params({"evaluate": {"seeds": [0, 0]}})


def test_compose_takes_k_times_real_images(tmp_path):
    roots = {"R": write_box_dataset(tmp_path / "r", 4), "S": write_box_dataset(tmp_path / "s", 10, seed=1),
             "C": write_box_dataset(tmp_path / "c", 10, seed=2)}
    assert len(compose(parse_set("R+S", ["C"]), roots, "head", 0)) == 14
    half = compose(parse_set("R+0.5xC", ["C"]), roots, "head", 0)
    assert len(half) == 6 and all(s.image.parent.parent.name in "rc" for s in half)
    assert len(compose(parse_set("R+5xC", ["C"]), roots, "head", 0)) == 14  # capped at |C| = 10
    other = compose(parse_set("R+0.5xC", ["C"]), roots, "head", 1)
    assert [s.image for s in compose(parse_set("R+0.5xC", ["C"]), roots, "head", 0)] == [s.image for s in half]
    assert len(other) == 6


def test_pretrain_finetune_set_round_trips_with_its_phases(tmp_path):
    roots = {"R": write_box_dataset(tmp_path / "r", 4), "S": write_box_dataset(tmp_path / "s", 10, seed=1)}
    assert materialise("S>R", parse_phases("S>R", []), roots, tmp_path / "set") == 14
    pre, fine = load_phases(tmp_path / "set", "head", 0)
    assert [s.image.parent.parent.name for s in pre] == ["S"] * 10
    assert [s.image.parent.parent.name for s in fine] == ["R"] * 4
    with pytest.raises(PipelineError, match="two phases"):
        load_set(tmp_path / "set", "head", 0)
    assert materialise("R+0.5xS", parse_phases("R+0.5xS", []), roots, tmp_path / "mix") == 14
    assert len(load_set(tmp_path / "mix", "head", 0)) == 4 + 2


def test_items_resize_and_flip_with_their_boxes(tmp_path):
    samples = load_samples(write_box_dataset(tmp_path / "d", 6), "head")
    plain = DetectionData(samples, (96, 128))
    aug = DetectionData(samples, (96, 128), augment=True, seed=3)
    flips = 0
    for i in range(len(samples)):
        for data in (plain, aug):
            x, boxes = data[i]
            assert x.shape == (3, 96, 128) and boxes.shape == (1, 4)
            x1, y1, x2, y2 = boxes[0].round().int().tolist()
            inside = x[:, y1 + 2:y2 - 2, x1 + 2:x2 - 2]
            assert inside.numel() > 0 and inside.min() > 0.9  # the bright box is where its label says
            assert (x > 0.9).float().sum() <= (x2 - x1 + 2) * (y2 - y1 + 2) * 3
        flips += not torch.equal(plain[i][1], aug[i][1])
    assert flips > 0
    assert plain.scale(0) == (0.5, 0.5)
    assert np.allclose(plain.box_sizes(), [[24, 20]] * 6)


def test_patches_keep_their_boxes_on_their_pixels(tmp_path):
    samples = load_samples(write_box_dataset(tmp_path / "d", 6), "head")
    data = PatchData(samples, (96, 128), patch=48, per_image=4, augment=True, seed=1)
    assert len(data) == 24
    moved = set()
    for j in range(len(data)):
        x, boxes = data[j]
        assert x.shape == (3, 48, 48) and x.is_contiguous()
        bright = (x > 0.9).all(0)
        for x1, y1, x2, y2 in boxes.round().int().tolist():  # every kept box is bright inside
            assert bright[y1 + 1:y2 - 1, x1 + 1:x2 - 1].all()
        if len(boxes) == 0:  # a box cut by the window border by more than half is left out
            assert bright.sum() < 24 * 20 / 2 + 4 * 24
        moved.add(tuple(boxes.flatten().round().tolist()))
    assert len(moved) > 6  # windows differ in position and orientation
    again = PatchData(samples, (96, 128), patch=48, per_image=4, augment=True, seed=1)
    assert all(torch.equal(data[j][0], again[j][0]) and torch.equal(data[j][1], again[j][1])
               for j in range(len(data)))  # draws depend on (seed, epoch, j), and a decoded image is reused as read
    rendered = [dataclasses.replace(s, rendered=True) for s in samples]
    jittered = PatchData(rendered, (96, 128), patch=48, per_image=4, augment=True, seed=1, photometric=True)
    for j in range(4):  # the random camera changes pixels of rendered images, never geometry, and stays in [-1, 1]
        x, boxes = jittered[j]
        assert torch.equal(boxes, data[j][1]) and not torch.equal(x, data[j][0])
        assert x.min() >= -1 and x.max() <= 1
    real = PatchData(samples, (96, 128), patch=48, per_image=4, augment=True, seed=1, photometric=True)
    assert torch.equal(real[0][0], data[0][0])  # real images keep their own camera
    with pytest.raises(PipelineError, match="train_detector.patch"):
        PatchData(samples, (96, 128), patch=112, per_image=1)
