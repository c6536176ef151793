"""Seed Algorithm 3 on a tiny real SqueezeDet: the kept weights are the best validation epoch's and the
threshold is the one chosen on the validation split for those weights; runs are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.detection.detector.data import DetectionData
from pipeline.detection.detector.sets import load_samples
from pipeline.metrics.detection import best_threshold, prf1
from pipeline.detection.detector.squeezedet import SqueezeDet, kmeans_anchors
from pipeline.detection.params import TrainDetectorParams
from pipeline.detection.detector.training import fit, load_detector, predict_data, save_detector
from pipeline.train.device import deterministic, pick_device
from tests.conftest import write_box_dataset

SIZE = (48, 64)
P = TrainDetectorParams(epochs=4, batch_size=4, width=0.25, anchors=3, lr=2e-3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("boxes")
    train = DetectionData(load_samples(write_box_dataset(root / "train", 12)), SIZE, augment=True, seed=0)
    val = DetectionData(load_samples(write_box_dataset(root / "val", 6, seed=7)), SIZE)
    return train, val


def _fit(train, val, seed=0):
    setup = pick_device("cpu")
    with deterministic(seed):
        model = SqueezeDet(1, kmeans_anchors(train.box_sizes(), P.anchors, seed), SIZE, P.width)
        result = fit(model, P, train, val, 0.5, seed, setup)
    return model, result, setup


def test_fit_keeps_the_best_validation_epoch_and_its_threshold(data, tmp_path):
    train, val = data
    model, result, setup = _fit(train, val)
    f1s = [h["val_f1"] for h in result.history]
    assert len(f1s) == P.epochs and result.best_epoch == 1 + int(np.argmax(f1s)) and result.val_f1 == max(f1s)
    preds = predict_data(model, val, setup)
    gts = [s.boxes for s in val.samples]
    assert best_threshold(preds, gts) == (pytest.approx(result.threshold), pytest.approx(result.val_f1))
    assert prf1(preds, gts, conf=result.threshold)["f1"] == pytest.approx(result.val_f1)
    assert result.val_f1 > 0  # white boxes on black: learnable in a few epochs
    save_detector(tmp_path / "m.pt", model, threshold=result.threshold)
    again, meta = load_detector(tmp_path / "m.pt")
    x = torch.stack([val[i][0] for i in range(2)])
    assert meta["threshold"] == result.threshold and torch.equal(again(x)["conf"], model.eval()(x)["conf"])


def test_fit_is_reproducible_on_cpu(data):
    train, val = data
    a = _fit(train, val)[1].history
    b = _fit(train, val)[1].history
    assert a == b
