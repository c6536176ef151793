"""SqueezeDet model, box coding, anchor k-means, loss and a tiny overfit run (CPU, width 0.25)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torchvision.ops import box_iou

from pipeline.errors import PipelineError
from pipeline.detection.detector.squeezedet import WEIGHTS_FILE, SqueezeDet, decode, encode, kmeans_anchors
from pipeline.detection.detector.training import predict, squeezedet_loss, train_epoch
from pipeline.train.device import pick_device

H, W = 96, 128
ANCHORS = torch.tensor([[24.0, 24.0], [40.0, 32.0], [32.0, 48.0], [64.0, 56.0]])
GTS = [torch.tensor([[20.0, 16.0, 64.0, 52.0]]), torch.tensor([[72.0, 40.0, 104.0, 88.0]])]


def _model(num_classes: int = 1, width: float = 0.25, seed: int = 0) -> SqueezeDet:
    torch.manual_seed(seed)
    return SqueezeDet(num_classes, ANCHORS, (H, W), width=width)


def _rect_images() -> torch.Tensor:
    """Two dark images in [-1,1], each with one bright rectangle at GTS[i]."""
    x = torch.full((2, 3, H, W), -0.8)
    x += 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    for i, gt in enumerate(GTS):
        x0, y0, x1, y1 = (int(v) for v in gt[0])
        x[i, :, y0:y1, x0:x1] = 0.9
    return x.clamp(-1, 1)


def test_output_shapes_and_anchor_grid():
    m = _model(num_classes=3)
    out = m(torch.rand(2, 3, H, W) * 2 - 1)
    n = (H // 16) * (W // 16) * len(ANCHORS)
    assert out["deltas"].shape == (2, n, 4)
    assert out["conf"].shape == (2, n)
    assert out["cls"].shape == (2, n, 3)
    assert m.anchors_xyxy.shape == (n, 4)
    # first cell centre (8,8), anchors in the given order; last anchor at the last cell centre
    assert torch.allclose(m.anchors_xyxy[0], torch.tensor([-4.0, -4.0, 20.0, 20.0]))
    assert torch.allclose(m.anchors_xyxy[-1], torch.tensor([120 - 32.0, 88 - 28.0, 120 + 32.0, 88 + 28.0]))
    # any other multiple of 16 runs on its own grid of the same anchor shapes (training on windows)
    wider = m(torch.zeros(1, 3, H, W + 16))
    grid = m.anchors_for((H, W + 16))
    assert wider["conf"].shape == (1, len(grid)) == (1, (H // 16) * (W // 16 + 1) * len(ANCHORS))
    assert torch.allclose(grid[0], m.anchors_xyxy[0]) and m.anchors_for((H, W)) is m.anchors_xyxy
    with pytest.raises(ValueError):
        m(torch.zeros(1, 3, H, W + 8))


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    anchors = _model().anchors_xyxy
    centres = torch.rand(len(anchors), 2, generator=g) * torch.tensor([W, H])
    sizes = 4 + torch.rand(len(anchors), 2, generator=g) * 80
    gt = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    deltas = encode(anchors, gt)
    assert torch.allclose(decode(anchors, deltas), gt, atol=1e-4)
    assert torch.allclose(encode(anchors, anchors), torch.zeros_like(anchors), atol=1e-6)
    huge = decode(anchors[:1], torch.tensor([[0.0, 0.0, 50.0, 50.0]]))
    assert torch.isfinite(huge).all() and (huge[:, 2] - huge[:, 0]).item() <= 24 * 1000 / 16 + 1e-3


def test_kmeans_anchors_recovers_clusters_and_is_deterministic():
    rng = np.random.default_rng(0)
    truth = np.array([[10.0, 10.0], [30.0, 15.0], [60.0, 60.0]])
    wh = np.concatenate([t * rng.normal(1.0, 0.05, size=(80, 2)) for t in truth])
    rng.shuffle(wh)
    a = kmeans_anchors(wh, 3, seed=0)
    assert a.shape == (3, 2)
    assert np.all(np.abs(a - truth) / truth < 0.15), a
    assert np.array_equal(a, kmeans_anchors(wh, 3, seed=0))
    few = kmeans_anchors(np.array([[50.0, 40.0], [8.0, 6.0]]), 4)
    assert few.shape == (4, 2) and np.all(np.diff(few.prod(1)) >= 0)
    assert {tuple(r) for r in few} == {(8.0, 6.0), (50.0, 40.0)}


@pytest.mark.parametrize("with_gt", [True, False])
def test_loss_finite_and_reaches_backbone(with_gt):
    m = _model(num_classes=2)
    x = _rect_images()
    targets = GTS if with_gt else [torch.zeros(0, 4), torch.zeros(0, 4)]
    labels = [torch.tensor([0]), torch.tensor([1])] if with_gt else [torch.zeros(0, dtype=torch.long)] * 2
    loss, logs = squeezedet_loss(m(x), m.anchors_xyxy, targets, labels)
    assert torch.isfinite(loss) and loss.item() > 0
    assert (logs["n_pos"] >= 2) if with_gt else logs["n_pos"] == 0
    assert (logs["bbox"] > 0) == with_gt
    loss.backward()
    grad = m.features[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_overfit_two_rectangles():
    m = _model(num_classes=2)
    x = _rect_images()
    labels = [torch.tensor([0]), torch.tensor([1])]
    # 3e-4: at 1e-3 constant-lr Adam oscillated out of the minimum on some CPUs (loss 0.06 -> 30 in one epoch)
    opt = torch.optim.Adam(m.parameters(), lr=3e-4)
    batches = [(x, GTS, labels)] * 25
    setup = pick_device("cpu")
    first = squeezedet_loss(m(x), m.anchors_xyxy, GTS, labels)[1]["loss"]
    losses = [train_epoch(m, opt, batches, setup)["loss"] for _ in range(6)]  # 150 steps
    last = squeezedet_loss(m(x), m.anchors_xyxy, GTS, labels)[1]["loss"]
    assert last < 0.3 * first, (first, losses, last)
    dets = predict(m, x)
    for det, gt, lab in zip(dets, GTS, labels):
        assert len(det["boxes"]) > 0
        assert box_iou(det["boxes"][:1], gt).item() > 0.5, det["boxes"][:3]
        assert det["labels"][0] == lab[0]
        assert torch.all(det["scores"][:-1] >= det["scores"][1:])
        assert det["boxes"][:, 0::2].min() >= 0 and det["boxes"][:, 0::2].max() <= W
        assert det["boxes"][:, 1::2].min() >= 0 and det["boxes"][:, 1::2].max() <= H
    assert m.training  # predict restores the mode


def test_load_backbone_missing_and_corrupt(tmp_path):
    m = _model(width=1.0)
    with pytest.raises(PipelineError, match=WEIGHTS_FILE):
        m.load_backbone(tmp_path / WEIGHTS_FILE)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="corrupt"):
        m.load_backbone(bad)
    with pytest.raises(PipelineError, match="width"):
        _model(width=0.25).load_backbone(bad)


def test_load_backbone_from_torchvision_state_dict(tmp_path):
    torch.manual_seed(1)
    ref = torchvision.models.squeezenet1_1(weights=None)
    path = tmp_path / WEIGHTS_FILE
    torch.save(ref.state_dict(), path)
    m = _model(width=1.0)
    assert not torch.equal(m.features[0].weight, ref.features[0].weight)
    m.load_backbone(path)
    assert torch.equal(m.features[0].weight, ref.features[0].weight)
    assert torch.equal(m.features[12].expand3x3.weight, ref.features[12].expand3x3.weight)


def test_loss_options_bce_and_ignore_band():
    m = _model()
    x = _rect_images()
    out = m(x)
    labels = [torch.tensor([0]), torch.tensor([0])]
    base = squeezedet_loss(out, m.anchors_xyxy, GTS, labels)[1]
    band = squeezedet_loss(out, m.anchors_xyxy, GTS, labels, ignore_iou=0.1)[1]
    # anchors overlapping a box by IoU in [0.1, 0.5) are neither positive nor negative any more
    best = torch.stack([box_iou(g, m.anchors_xyxy).max(0).values for g in GTS])
    in_band = int(((best >= 0.1) & (best <= 0.5)).sum())
    assert band["n_pos"] == base["n_pos"] and in_band > 0
    assert band["conf_neg"] != base["conf_neg"]
    bce = squeezedet_loss(out, m.anchors_xyxy, GTS, labels, conf="bce")[1]
    # at the initial prior (sigmoid = 0.01) BCE of a positive is -log(0.01) ~ 4.6; of a negative ~ 0.01
    assert bce["conf_pos"] == pytest.approx(4.6, abs=0.5) and bce["conf_neg"] == pytest.approx(0.01, abs=0.01)
    assert bce["bbox"] == base["bbox"]
