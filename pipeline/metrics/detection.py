"""Detection metrics: COCO-style greedy matching, P/R/F1, AP via pycocotools and torchmetrics.

Boxes are ``xyxy`` in pixels, given as tensors or arrays. ``preds`` is one dict per image with
``boxes`` (N, 4) and ``scores`` (N,); ``gts`` is one (M, 4) box array per image, in the same order.
Everything is single-category (one object class).
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pipeline.errors import PipelineError

ArrayLike = Any  # torch.Tensor | np.ndarray | nested sequences
Match = tuple[np.ndarray, np.ndarray, int]

_REC_THRS = np.linspace(0.0, 1.0, 101)  # COCO's 101 recall points


def _boxes(x: ArrayLike) -> torch.Tensor:
    """(N, 4) float64 tensor from a tensor/array/list (empty input gives shape (0, 4))."""
    t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x), dtype=torch.float64)
    return t.reshape(-1, 4)


def _scores(x: ArrayLike) -> np.ndarray:
    """(N,) float64 array from a tensor/array/list."""
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).reshape(-1)


def match(pred_boxes: ArrayLike, pred_scores: ArrayLike, gt_boxes: ArrayLike,
          iou_thresh: float = 0.5) -> Match:
    """Greedy one-to-one matching of one image, as COCOeval does it.

    Predictions are visited by descending score (stable sort); each takes the still-unmatched
    ground-truth box with the highest IoU, if that IoU is >= ``iou_thresh``; on an exact IoU tie the
    last such ground-truth box, as COCOeval's ``evaluateImg`` (its ``<`` comparison lets a later tie win).
    Returns ``(tp, scores, n_gt)``: a bool per prediction and the scores, both in that order.
    """
    from torchvision.ops import box_iou  # torchvision's import costs seconds: only when matching
    boxes, scores, gt = _boxes(pred_boxes), _scores(pred_scores), _boxes(gt_boxes)
    if len(boxes) != len(scores):
        raise PipelineError(f"{len(boxes)} predicted boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="mergesort")
    scores = scores[order]
    tp = np.zeros(len(scores), dtype=bool)
    if len(scores) == 0 or len(gt) == 0:
        return tp, scores, len(gt)
    ious = box_iou(boxes[torch.as_tensor(order)], gt).numpy()
    taken = np.zeros(len(gt), dtype=bool)
    thresh = min(iou_thresh, 1 - 1e-10)  # same clamp as COCOeval
    for i, row in enumerate(ious):
        cand = np.where(taken, -1.0, row)
        j = len(cand) - 1 - int(np.argmax(cand[::-1]))  # the last of the best (COCOeval)
        if cand[j] >= thresh:
            taken[j] = tp[i] = True
    return tp, scores, len(gt)


def _check(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike]) -> None:
    """One-line error when predictions and ground truth do not line up."""
    if len(preds) != len(gts):
        raise PipelineError(f"{len(preds)} prediction entries but {len(gts)} ground-truth images")


def match_all(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike],
              iou: float = 0.5) -> list[Match]:
    """:func:`match` for every image of a dataset."""
    _check(preds, gts)
    return [match(p["boxes"], p["scores"], g, iou) for p, g in zip(preds, gts)]


def _counts(matches: Sequence[Match], conf: float) -> tuple[int, int, int]:
    """(tp, fp, fn) over a dataset keeping predictions with score >= ``conf``.

    Filtering after matching is exact: greedy matching visits higher scores first, so the
    matches of the kept predictions do not depend on the dropped ones.
    """
    tp = fp = n_gt = 0
    for hits, scores, n in matches:
        keep = scores >= conf
        tp += int(hits[keep].sum())
        fp += int((~hits[keep]).sum())
        n_gt += n
    return tp, fp, n_gt - tp


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1 (0.0 where a denominator is zero)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def prf1(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike],
         iou: float = 0.5, conf: float = 0.0) -> dict[str, float | int]:
    """Precision, recall, F1 and TP/FP/FN counts over a dataset at confidence ``conf`` (inclusive)."""
    tp, fp, fn = _counts(match_all(preds, gts, iou), conf)
    p, r, f1 = _prf(tp, fp, fn)
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def best_threshold(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike],
                   iou: float = 0.5) -> tuple[float, float]:
    """The confidence threshold (inclusive) that maximises F1, scanning every distinct score.

    Call this on the VALIDATION split only and reuse the threshold on test; choosing it on test
    data would leak the test labels into the reported numbers. Ties go to the highest threshold.
    Returns ``(threshold, f1)``; ``(0.0, 0.0)`` when there are no predictions.
    """
    matches = match_all(preds, gts, iou)
    n_gt = sum(m[2] for m in matches)
    hits = np.concatenate([m[0] for m in matches]) if matches else np.zeros(0, bool)
    scores = np.concatenate([m[1] for m in matches]) if matches else np.zeros(0)
    if len(scores) == 0:
        return 0.0, 0.0
    order = np.argsort(-scores, kind="mergesort")
    hits, scores = hits[order], scores[order]
    tp = np.cumsum(hits)
    kept = np.arange(1, len(scores) + 1)
    last = np.r_[scores[1:] != scores[:-1], True]  # last position of each distinct score
    f1 = np.where(last, 2 * tp / (kept + n_gt), -1.0)  # F1 = 2TP / (TP+FP + TP+FN)
    i = int(np.argmax(f1))  # first maximum = highest threshold
    return float(scores[i]), float(f1[i])


def ap_from_matches(matches: Sequence[Match]) -> float:
    """COCO 101-point interpolated AP from :func:`match` outputs (no maxDets cut; NaN without gt)."""
    n_gt = sum(m[2] for m in matches)
    if n_gt == 0:
        return math.nan
    hits = np.concatenate([m[0] for m in matches]) if matches else np.zeros(0, bool)
    scores = np.concatenate([m[1] for m in matches]) if matches else np.zeros(0)
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order]).astype(np.float64)
    fp = np.cumsum(~hits[order]).astype(np.float64)
    rc = tp / n_gt
    pr = tp / (tp + fp + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope
    idx = np.searchsorted(rc, _REC_THRS, side="left")
    q = np.zeros(len(_REC_THRS))
    valid = idx < len(pr)
    q[valid] = pr[idx[valid]]
    return float(np.mean(q))


def _coco_objects(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike]
                  ) -> tuple[dict, list[dict]]:
    """In-memory COCO ground-truth dataset and detection list (xywh), one category."""
    images, anns, dets = [], [], []
    for img_id, (p, g) in enumerate(zip(preds, gts), start=1):
        images.append({"id": img_id, "width": 0, "height": 0})
        for x1, y1, x2, y2 in _boxes(g).tolist():
            w, h = x2 - x1, y2 - y1
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1,
                         "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0})
        for (x1, y1, x2, y2), s in zip(_boxes(p["boxes"]).tolist(), _scores(p["scores"]).tolist()):
            dets.append({"image_id": img_id, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}
    return gt, dets


def coco_ap(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike],
            iou_type: str = "bbox", max_dets: int = 100) -> dict[str, float]:
    """AP@0.5 (``ap50``) and AP@[.5:.95] (``map``) from pycocotools' COCOeval.

    At most ``max_dets`` detections per image count (COCO uses 100). No predictions gives 0.0;
    no ground truth at all gives NaN.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type != "bbox":
        raise PipelineError(f"coco_ap supports iou_type 'bbox' only, not {iou_type!r}")
    _check(preds, gts)
    gt_data, dets = _coco_objects(preds, gts)
    if not gt_data["annotations"]:
        return {"ap50": math.nan, "map": math.nan}
    if not dets:
        return {"ap50": 0.0, "map": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_data
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), iou_type)
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"ap50": float(ev.stats[1]), "map": float(ev.stats[0])}


def ap_torchmetrics(preds: Sequence[Mapping[str, ArrayLike]], gts: Sequence[ArrayLike],
                    iou_type: str = "bbox", max_dets: int = 100) -> dict[str, float]:
    """Cross-check of :func:`coco_ap` with torchmetrics' MeanAveragePrecision.

    Uses the faster_coco_eval backend when installed, else pycocotools. -1 (no ground truth)
    becomes NaN.
    """
    from torchmetrics.detection import MeanAveragePrecision

    _check(preds, gts)
    try:
        import faster_coco_eval  # noqa: F401
        backend = "faster_coco_eval"
    except ImportError:
        backend = "pycocotools"
    metric = MeanAveragePrecision(box_format="xyxy", iou_type=iou_type, backend=backend,
                                  max_detection_thresholds=[1, 10, max_dets])
    tm_preds, tm_gts = [], []
    for p, g in zip(preds, gts):
        boxes, scores, gt = _boxes(p["boxes"]).float(), torch.as_tensor(_scores(p["scores"])).float(), _boxes(g).float()
        tm_preds.append({"boxes": boxes, "scores": scores, "labels": torch.zeros(len(boxes), dtype=torch.long)})
        tm_gts.append({"boxes": gt, "labels": torch.zeros(len(gt), dtype=torch.long)})
    metric.update(tm_preds, tm_gts)
    with contextlib.redirect_stdout(io.StringIO()):
        out = metric.compute()
    ap50, m = float(out["map_50"]), float(out["map"])
    return {"ap50": math.nan if ap50 < 0 else ap50, "map": math.nan if m < 0 else m}
