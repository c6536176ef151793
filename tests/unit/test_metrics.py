"""Detection metrics (matcher, P/R/F1, AP cross-checks) and distribution distances (FD, KID, FID)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from pipeline.errors import PipelineError
from pipeline.metrics.detection import (ap_from_matches, ap_torchmetrics, best_threshold, coco_ap, match,
                                        match_all, prf1)
from pipeline.metrics.distances import (INCEPTION_WEIGHTS_FILE, InceptionWeightsMissing, _Precomputed,
                                        feature_distance, feature_stats, frechet_distance, inception_distances, kid)

GT = [[0.0, 0.0, 10.0, 10.0]]


def _pred(boxes, scores):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor(scores, dtype=torch.float32)}


# ---------------------------------------------------------------- matcher

def test_duplicate_detections_give_one_tp_one_fp():
    tp, scores, n_gt = match([[0, 0, 10, 10], [0, 0, 10, 10]], [0.8, 0.9], GT)
    assert tp.tolist() == [True, False] and scores.tolist() == pytest.approx([0.9, 0.8]) and n_gt == 1


@pytest.mark.parametrize("y2, hit", [(4.9, False), (5.0, True), (5.1, True)])  # IoU 0.49 / 0.50 / 0.51
def test_iou_threshold_is_inclusive(y2, hit):
    assert match([[0, 0, 10, y2]], [0.5], GT)[0].tolist() == [hit]


def test_higher_score_wins_even_with_lower_iou():
    tp, scores, _ = match([[0, 0, 10, 9], [0, 0, 10, 6]], [0.3, 0.9], GT)  # IoU 0.9 (low score), 0.6
    assert tp.tolist() == [True, False] and scores.tolist() == pytest.approx([0.9, 0.3])


def test_prediction_takes_best_unmatched_gt():
    gts = np.array([[0, 0, 10, 10], [0, 0, 10, 8]], dtype=float)
    tp, _, n_gt = match(np.array([[0, 0, 10, 8], [0, 0, 10, 10]]), np.array([0.9, 0.8]), gts)
    assert tp.tolist() == [True, True] and n_gt == 2  # first takes gt 1 (IoU 1), second gt 0
    tp, _, _ = match(np.array([[0, 0, 10, 8.2]]), np.array([0.9]), gts)
    assert tp.tolist() == [True]


def test_empty_predictions_and_empty_gts():
    tp, scores, n_gt = match(torch.zeros(0, 4), torch.zeros(0), GT)
    assert tp.shape == (0,) and scores.shape == (0,) and n_gt == 1
    tp, _, n_gt = match([[0, 0, 10, 10], [5, 5, 8, 8]], [0.2, 0.7], torch.zeros(0, 4))
    assert tp.tolist() == [False, False] and n_gt == 0
    out = prf1([_pred([], []), _pred([[0, 0, 1, 1]], [0.5])], [torch.tensor(GT), torch.zeros(0, 4)])
    assert (out["tp"], out["fp"], out["fn"], out["precision"], out["recall"]) == (0, 1, 1, 0.0, 0.0)


def test_mismatched_lengths_are_a_user_error():
    with pytest.raises(PipelineError, match="1 prediction entries but 2"):
        prf1([_pred([], [])], [torch.zeros(0, 4)] * 2)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_exact_iou_tie_goes_to_the_last_gt_as_in_cocoeval(order):
    # A overlaps both gts with IoU exactly 90/110; B overlaps only gt "left" (IoU 2/3; 3/7 with "right").
    # COCOeval gives a tie to the later gt, so the outcome depends on the gt order; we must agree with it.
    left, right = [0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0]
    gt = torch.tensor([[left, right][i] for i in order])
    pred = _pred([[1, 0, 11, 10], [-2, 0, 8, 10]], [0.9, 0.8])
    tp, _, _ = match(pred["boxes"], pred["scores"], gt)
    expected_tp = [True, True] if order == (0, 1) else [True, False]  # A takes the last gt
    assert tp.tolist() == expected_tp
    ours = ap_from_matches(match_all([pred], [gt], 0.5))
    assert ours == pytest.approx(coco_ap([pred], [gt])["ap50"], abs=1e-9)
    assert prf1([pred], [gt])["tp"] == sum(expected_tp)


# ---------------------------------------------------------------- datasets

def _random_dataset(seed: int = 0, n_images: int = 20):
    """Overlapping random boxes: jittered copies of gts (wide IoU spread), duplicates, clutter."""
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for i in range(n_images):
        n_gt = 0 if i == 1 else int(rng.integers(1, 7))
        xy = rng.uniform(0, 150, (n_gt, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 50, (n_gt, 2))], axis=1)
        boxes = [g + rng.normal(0, 0.12, 4) * (g[2:] - g[:2]).repeat(2) for g in gt for _ in range(rng.integers(0, 3))]
        for _ in range(rng.integers(0, 5)):
            x, y = rng.uniform(0, 150, 2)
            boxes.append(np.array([x, y, x + rng.uniform(10, 50), y + rng.uniform(10, 50)]))
        boxes = np.array(boxes if i else [], dtype=float).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        preds.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                      "scores": torch.tensor(rng.uniform(0, 1, len(boxes)), dtype=torch.float32)})
        gts.append(torch.tensor(gt, dtype=torch.float32).reshape(-1, 4))
    return preds, gts


def _designed_dataset(seed: int = 1, n_images: int = 20):
    """Gts on a 100-px grid; hits have IoU > 0.6 with their own gt only; clutter sits in an empty band.

    Returns preds, gts and, per prediction, the gt it belongs to (-1 for clutter).
    """
    rng = np.random.default_rng(seed)
    preds, gts, owners = [], [], []
    for _ in range(n_images):
        cells = rng.choice(9, size=int(rng.integers(0, 5)), replace=False)
        gt = np.array([[100 * (c % 3) + 20, 100 * (c // 3) + 20, 100 * (c % 3) + 70, 100 * (c // 3) + 70]
                       for c in cells], dtype=float).reshape(-1, 4)
        boxes, owner = [], []
        for j, g in enumerate(gt):
            for _ in range(rng.integers(0, 3)):  # 0, 1 or 2 (a duplicate) detections per gt
                boxes.append(g + rng.uniform(-4, 4, 4))
                owner.append(j)
        for _ in range(rng.integers(0, 4)):
            x = rng.uniform(0, 250)
            boxes.append(np.array([x, 320, x + 30, 360]))
            owner.append(-1)
        preds.append({"boxes": torch.tensor(np.array(boxes).reshape(-1, 4)),
                      "scores": torch.tensor(rng.uniform(0, 1, len(boxes)))})
        gts.append(torch.tensor(gt))
        owners.append(np.array(owner, dtype=int))
    return preds, gts, owners


# ---------------------------------------------------------------- AP, P/R/F1

def test_ap_from_our_matcher_agrees_with_pycocotools_and_torchmetrics():
    preds, gts = _random_dataset()
    ours50 = ap_from_matches(match_all(preds, gts, 0.5))
    ours_map = np.mean([ap_from_matches(match_all(preds, gts, t)) for t in np.linspace(0.5, 0.95, 10)])
    coco = coco_ap(preds, gts)
    tm = ap_torchmetrics(preds, gts)
    assert 0.1 < coco["ap50"] < 0.95 and coco["map"] < coco["ap50"]  # a non-trivial case
    assert ours50 == pytest.approx(coco["ap50"], abs=1e-3)
    assert ours_map == pytest.approx(coco["map"], abs=1e-3)
    assert tm["ap50"] == pytest.approx(coco["ap50"], abs=1e-3)
    assert tm["map"] == pytest.approx(coco["map"], abs=1e-3)


def test_coco_ap_edge_cases():
    preds, gts = _random_dataset(n_images=3)
    assert coco_ap([_pred([], [])] * 3, gts) == {"ap50": 0.0, "map": 0.0}
    assert np.isnan(coco_ap(preds, [torch.zeros(0, 4)] * 3)["ap50"])
    perfect = [{"boxes": g, "scores": torch.ones(len(g))} for g in gts]
    assert coco_ap(perfect, gts) == pytest.approx({"ap50": 1.0, "map": 1.0})


@pytest.mark.parametrize("conf", [0.0, 0.3, 0.75])
def test_prf1_counts_match_construction(conf):
    preds, gts, owners = _designed_dataset()
    tp = fp = fn = 0
    for p, g, own in zip(preds, gts, owners):
        kept = own[p["scores"].numpy() >= conf]
        hits = np.bincount(kept[kept >= 0], minlength=len(g))
        tp += int((hits > 0).sum())
        fn += int((hits == 0).sum())
        fp += int((hits - 1).clip(0).sum() + (kept < 0).sum())
    out = prf1(preds, gts, iou=0.5, conf=conf)
    assert (out["tp"], out["fp"], out["fn"]) == (tp, fp, fn) and tp > 0 and fp > 0 and fn > 0
    assert out["precision"] == pytest.approx(tp / (tp + fp)) and out["recall"] == pytest.approx(tp / (tp + fn))
    assert out["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_best_threshold_maximises_f1():
    # 4 gts over two images; by score: 0.9 TP, 0.8 TP, 0.7 FP, 0.6 TP, 0.5 FP, 0.4 FP -> best is 0.6 (F1 0.75).
    g = [[0, 0, 10, 10], [20, 0, 30, 10]]
    preds = [_pred([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.7, 0.4]),  # TP, FP, duplicate
             _pred([[0, 0, 10, 10], [80, 80, 90, 90], [20, 0, 30, 10]], [0.8, 0.5, 0.6])]  # TP, FP, TP
    gts = [torch.tensor(g), torch.tensor(g)]
    thr, f1 = best_threshold(preds, gts)
    assert thr == pytest.approx(0.6) and f1 == pytest.approx(0.75)
    assert prf1(preds, gts, conf=thr)["f1"] == pytest.approx(f1)
    assert max(prf1(preds, gts, conf=c)["f1"] for c in np.linspace(0, 1, 41)) == pytest.approx(f1)
    assert best_threshold([_pred([], [])] * 2, gts) == (0.0, 0.0)


# ---------------------------------------------------------------- Fréchet distance, KID

def _independent_fd(a: np.ndarray, b: np.ndarray) -> float:
    """|mu1-mu2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2, via symmetric eigendecompositions."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w.clip(0))) @ v.T
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1).clip(0)
    d = a.mean(0) - b.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(inner).sum())


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(250, 8)) @ rng.normal(size=(8, 8)) * 0.7 + 0.3
    return a, b


def test_frechet_distance_matches_direct_formula(feats):
    a, b = feats
    mu_a, s_a = feature_stats(a)
    assert frechet_distance(mu_a, s_a, mu_a, s_a) == pytest.approx(0.0, abs=1e-6)
    v = np.array([1.0, -2.0, 0.5, 0, 0, 3.0, 0, 0])
    mu_s, s_s = feature_stats(a + v)
    assert frechet_distance(mu_a, s_a, mu_s, s_s) == pytest.approx(v @ v, rel=1e-6)
    fd = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fd > 1.0 and fd == pytest.approx(_independent_fd(a, b), rel=1e-6)
    # the hand-written sqrtm route against scipy directly
    s_b = feature_stats(b)[1]
    direct = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real)
    assert fd == pytest.approx(direct, rel=1e-9)


def test_frechet_distance_agrees_with_torchmetrics_fid(feats):
    from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

    a, b = feats
    metric = FrechetInceptionDistance(feature=_Precomputed(a.shape[1]))
    metric.update(torch.tensor(a), real=True)
    metric.update(torch.tensor(b), real=False)
    ours = feature_distance(a, b, kid_subsets=2, kid_subset_size=50)["fd"]
    assert float(metric.compute()) == pytest.approx(ours, rel=1e-6)
    stats = [torch.tensor(s) for s in (*feature_stats(a), *feature_stats(b))]
    assert float(_compute_fid(*stats)) == pytest.approx(ours, rel=1e-6)


def test_frechet_distance_singular_covariance_is_finite():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 12)), rng.normal(size=(6, 12)) + 1  # rank-deficient covariances
    fd = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert np.isfinite(fd) and fd == pytest.approx(_independent_fd(a, b), rel=1e-3)


def test_kid_identical_shifted_and_torchmetrics(feats):
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = feats
    x = np.random.default_rng(5).normal(size=(400, 8))
    same, _ = kid(x, x, subsets=1, subset_size=400)  # unbiased estimate: only an O(1/m) offset from 0
    shifted, _ = kid(x, x + 1.0, subsets=10, subset_size=200)
    assert abs(same) < 0.1 and shifted > 50 * abs(same)
    with pytest.warns(UserWarning):
        metric = KernelInceptionDistance(feature=_Precomputed(8), subsets=6, subset_size=60)
    metric.update(torch.tensor(a), real=True)
    metric.update(torch.tensor(b), real=False)
    torch.manual_seed(11)
    tm_mean, tm_std = metric.compute()
    mean, std = kid(a, b, subsets=6, subset_size=60, seed=11)
    assert mean > 0 and std > 0
    assert mean == pytest.approx(float(tm_mean), rel=1e-9) and std == pytest.approx(float(tm_std), rel=1e-6)
    out = feature_distance(a, b, kid_subsets=6, kid_subset_size=60, seed=11)
    assert set(out) == {"fd", "kid_mean", "kid_std", "n_a", "n_b"} and (out["n_a"], out["n_b"]) == (300, 250)
    assert out["kid_mean"] == pytest.approx(mean)


# ---------------------------------------------------------------- Inception weights

def _no_download(*args, **kwargs):
    raise AssertionError("attempted to download Inception weights")


@pytest.mark.parametrize("where", ["file", "folder", "hub"])
def test_missing_inception_weights_raise(tmp_path, monkeypatch, where):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    path = {"file": str(tmp_path / "nope.pth"), "folder": str(tmp_path), "hub": None}[where]
    imgs = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(InceptionWeightsMissing, match=INCEPTION_WEIGHTS_FILE) as err:
        inception_distances(imgs, imgs, path)
    assert isinstance(err.value, PipelineError) and "\n" not in str(err.value)
    assert "weights_path" in str(err.value)


def test_inception_distances_with_local_weights(tmp_path, monkeypatch):
    """Random weights in the pytorch-fid file layout load offline and give sane FID/KID."""
    import torchvision

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(net.state_dict(), tmp_path / INCEPTION_WEIGHTS_FILE)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g)
    b = torch.rand(5, 3, 32, 32, generator=g) * 0.5  # float input in [0, 1]
    same = inception_distances(a, a, str(tmp_path), dims=64, kid_subsets=3, batch_size=4)
    diff = inception_distances(a, b, str(tmp_path), dims=64, kid_subsets=3, batch_size=4)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6) and (diff["n_a"], diff["n_b"]) == (6, 5)
    assert diff["fid"] > 1e-6 and np.isfinite([diff["kid_mean"], diff["kid_std"]]).all()
