"""SqueezeDet loss, inference and a minimal training epoch (Wu et al. 2017, section 3.3).

Boxes are xyxy in pixels, labels are class indices in [0, C). Each gt box is matched to its
best-IoU anchor; anchors whose best IoU with any gt exceeds 0.5 are positive too. Everything
else is negative and only trained (through the confidence) towards "no object".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from pipeline.detection.detector.data import DetectionData, loader
from pipeline.errors import PipelineError
from pipeline.metrics.detection import best_threshold, coco_ap, prf1
from pipeline.detection.detector.squeezedet import SqueezeDet, decode, encode
from pipeline.detection.params import TrainDetectorParams
from pipeline.train.device import DeviceSetup

Batch = tuple[torch.Tensor, Sequence[torch.Tensor], Sequence[torch.Tensor]]


def match_anchors(anchors_xyxy: torch.Tensor, gt_xyxy: torch.Tensor, iou_thresh: float = 0.5) -> torch.Tensor:
    """Index (N,) of the gt box each anchor (N,4) regresses to, -1 for negatives; gt (M,4), M may be 0.

    Every gt gets its best-IoU anchor (a later gt wins a shared anchor); anchors whose best IoU
    exceeds ``iou_thresh`` take that gt.
    """
    return _match(anchors_xyxy, gt_xyxy, iou_thresh)[0]


def _match(anchors_xyxy: torch.Tensor, gt_xyxy: torch.Tensor, iou_thresh: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`match_anchors`' indices (N,) and each anchor's best IoU with any gt (N,), from one IoU matrix."""
    from torchvision.ops import box_iou  # torchvision's import costs seconds: only when used
    idx = torch.full((anchors_xyxy.shape[0],), -1, dtype=torch.long, device=anchors_xyxy.device)
    if gt_xyxy.numel() == 0:
        return idx, anchors_xyxy.new_zeros(anchors_xyxy.shape[0])
    iou = box_iou(gt_xyxy.to(anchors_xyxy), anchors_xyxy)  # (M,N)
    best_iou, best_gt = iou.max(dim=0)
    idx = torch.where(best_iou > iou_thresh, best_gt, idx)
    idx[iou.argmax(dim=1)] = torch.arange(gt_xyxy.shape[0], device=idx.device)
    return idx, best_iou


def _positives(anchors_xyxy: torch.Tensor, targets: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positive mask (B,N), each anchor's best IoU with a gt box (B,N) and, for the positives in mask
    order, their gt boxes (P,4) and labels (P,)."""
    dev = anchors_xyxy.device
    masks, best, boxes, labs = [], [], [], []
    for gt, lab in zip(targets, labels, strict=True):
        gt, lab = gt.to(dev, torch.float32).reshape(-1, 4), lab.to(dev, torch.long).reshape(-1)
        idx, best_iou = _match(anchors_xyxy, gt, 0.5)
        pos = idx >= 0
        masks.append(pos)
        best.append(best_iou)
        boxes.append(gt[idx[pos]])
        labs.append(lab[idx[pos]])
    return torch.stack(masks), torch.stack(best), torch.cat(boxes), torch.cat(labs)


def squeezedet_loss(out: dict[str, torch.Tensor], anchors_xyxy: torch.Tensor, targets: Sequence[torch.Tensor],
                    labels: Sequence[torch.Tensor], lambda_bbox: float = 5.0, lambda_conf_pos: float = 75.0,
                    lambda_conf_neg: float = 100.0, lambda_cls: float = 1.0, conf: str = "squared",
                    ignore_iou: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """SqueezeDet multi-task loss over a batch; returns (scalar loss, logs of floats).

    ``out``: the model's deltas (B,N,4), conf (B,N) logits, cls (B,N,C) logits; ``targets[i]`` (Mi,4)
    xyxy and ``labels[i]`` (Mi,) per image (Mi may be 0). Terms, as in the paper:
    bbox: squared error of deltas vs encoded gt, summed over positives / #positives;
    conf: sigmoid(conf) regressed to the IoU of the (detached) decoded box with its gt, over
    positives / #positives, and to 0 over negatives / #negatives; cls: cross-entropy / #positives.
    ``conf="bce"`` uses binary cross-entropy on the logit instead (target 1 for positives, 0 for
    negatives); ``ignore_iou`` > 0 leaves negatives overlapping a gt box by at least that IoU out.
    """
    from torchvision.ops import box_iou
    deltas, logit, cls = out["deltas"].float(), out["conf"].float(), out["cls"].float()
    pos, best_iou, gt, lab = _positives(anchors_xyxy, targets, labels)
    neg = ~pos & (best_iou < ignore_iou) if ignore_iou > 0 else ~pos
    anchors_pos = anchors_xyxy.float().expand(pos.shape[0], -1, -1)[pos]
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    d_pos = deltas[pos]
    bbox = ((d_pos - encode(anchors_pos, gt)) ** 2).sum() / max(n_pos, 1)
    with torch.no_grad():
        iou = box_iou(decode(anchors_pos, d_pos), gt).diagonal() if n_pos else d_pos.new_zeros(0)
    if conf == "bce":
        conf_pos = F.binary_cross_entropy_with_logits(logit[pos], torch.ones_like(logit[pos]), reduction="sum")
        conf_neg = F.binary_cross_entropy_with_logits(logit[neg], torch.zeros_like(logit[neg]), reduction="sum")
        conf_pos, conf_neg = conf_pos / max(n_pos, 1), conf_neg / max(n_neg, 1)
    else:
        score = torch.sigmoid(logit)
        conf_pos = ((score[pos] - iou) ** 2).sum() / max(n_pos, 1)
        conf_neg = (score[neg] ** 2).sum() / max(n_neg, 1)
    cls_loss = F.cross_entropy(cls[pos], lab, reduction="sum") / max(n_pos, 1)
    loss = (lambda_bbox * bbox + lambda_conf_pos * conf_pos + lambda_conf_neg * conf_neg
            + lambda_cls * cls_loss)
    logs = {"loss": float(loss.detach()), "bbox": float(bbox.detach()), "conf_pos": float(conf_pos.detach()),
            "conf_neg": float(conf_neg.detach()), "cls": float(cls_loss.detach()), "n_pos": float(n_pos),
            "iou_pos": float(iou.mean()) if n_pos else 0.0}
    return loss, logs


def _select(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, size: tuple[int, int],
            conf_thresh: float, nms_iou: float, top_k: int, pre_nms: int) -> dict[str, torch.Tensor]:
    """One image: threshold, keep the ``pre_nms`` best, clip, drop empty boxes, class-wise NMS, top_k."""
    from torchvision.ops import batched_nms, clip_boxes_to_image
    keep = torch.nonzero(scores >= conf_thresh).squeeze(1)
    keep = keep[scores[keep].argsort(descending=True)[:pre_nms]]
    b = clip_boxes_to_image(boxes[keep], size)
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    b, s, lab = b[ok], scores[keep][ok], labels[keep][ok]
    kept = batched_nms(b, s, lab, nms_iou)[:top_k]
    return {"boxes": b[kept], "scores": s[kept], "labels": lab[kept]}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, conf_thresh: float = 0.0, nms_iou: float = 0.4,
            top_k: int = 100, pre_nms: int = 1000) -> list[dict[str, torch.Tensor]]:
    """Detections per image of x (B,3,H,W) in [-1,1]: boxes (n,4) xyxy clipped to the image, scores (n,)
    in [0,1] sorted descending, labels (n,) long.

    score = sigmoid(conf) * max softmax(cls); per-class NMS at ``nms_iou`` (torchvision batched_nms)
    over the ``pre_nms`` best anchors scoring at least ``conf_thresh``, then the ``top_k`` best.
    The model runs in eval mode; its previous mode is restored.
    """
    was_training = model.training
    model.eval()
    try:
        out = model(x.to(model.anchors_xyxy.device))
    finally:
        model.train(was_training)
    boxes = decode(model.anchors_for(x.shape[-2:]), out["deltas"].float())
    probs = torch.sigmoid(out["conf"].float())[..., None] * torch.softmax(out["cls"].float(), dim=-1)
    scores, labels = probs.max(dim=-1)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    return [_select(boxes[i], scores[i], labels[i], size, conf_thresh, nms_iou, top_k, pre_nms)
            for i in range(x.shape[0])]


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches: Iterable[Batch], setup: DeviceSetup,
                max_grad_norm: float | None = None, desc: str = "detector", **loss_kw: float) -> dict[str, float]:
    """One pass over ``batches`` of (images (B,3,H,W) in [-1,1], [boxes (Mi,4) xyxy], [labels (Mi,)]).

    Forward under ``setup.autocast()``, loss in fp32 (``loss_kw`` go to :func:`squeezedet_loss`),
    optional gradient-norm clipping. Returns the batch means of the loss and of each term (``loss``,
    ``bbox``, ``conf_pos``, ``conf_neg``, ``cls``, ``n_pos``, ``iou_pos``); a non-finite loss raises.
    """
    model.train()
    totals: dict[str, float] = {}
    n = 0
    bar = tqdm(batches, desc=desc, unit="batch", leave=False)
    for images, boxes, labels in bar:
        images = setup.batch(images)
        boxes = [b.to(setup.device, torch.float32) for b in boxes]
        labels = [lab.to(setup.device, torch.long) for lab in labels]
        with setup.autocast():
            out = model(images)
        loss, logs = squeezedet_loss(out, model.anchors_for(images.shape[-2:]), boxes, labels, **loss_kw)
        if not torch.isfinite(loss):
            raise PipelineError(f"{desc}: loss became {logs['loss']} after {n} batches; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        totals = {k: totals.get(k, 0.0) + v for k, v in logs.items()}
        n += 1
        bar.set_postfix(loss=f"{logs['loss']:.3f}", pos=int(logs["n_pos"]))
    if n == 0:
        raise PipelineError(f"{desc}: no training batches (is the training set empty?)")
    return {k: v / n for k, v in totals.items()}


# ---------------------------------------------------------------- seed Algorithm 3: train, select on val
@dataclass
class FitResult:
    """The epoch kept (best F1 on the validation split), its F1 and the threshold chosen there."""

    best_epoch: int
    val_f1: float
    threshold: float
    history: list[dict[str, float]] = field(default_factory=list)


def build_optimizer(model: nn.Module, p: TrainDetectorParams) -> tuple[torch.optim.Optimizer, Any]:
    """Adam or SGD (momentum, the paper's choice) with weight decay; constant or cosine lr over epochs."""
    if p.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum,
                                                     weight_decay=p.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    if p.schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.epochs)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)


def predict_data(model: nn.Module, data: DetectionData, setup: DeviceSetup, batch_size: int = 8,
                 workers: int = 0, nms_iou: float = 0.4, top_k: int = 100) -> list[dict[str, torch.Tensor]]:
    """All detections of every image (no confidence cut, so thresholds and AP can be computed later),
    boxes mapped back to the source image's pixels (the ground truth is ``data.samples[i].boxes``)."""
    preds = []
    for start, (images, _, _) in zip(range(0, len(data), batch_size),
                                     loader(data, batch_size, shuffle=False, workers=workers)):
        with setup.autocast():
            dets = predict(model, setup.batch(images), 0.0, nms_iou, top_k)
        for i, d in enumerate(dets, start):
            sx, sy = data.scale(i)
            boxes = d["boxes"].float().cpu() * torch.tensor([sx, sy, sx, sy])
            preds.append({"boxes": boxes, "scores": d["scores"].float().cpu(), "labels": d["labels"].cpu()})
    return preds


def score_split(preds: Sequence[dict], gts: Sequence[Any], threshold: float, iou: float) -> dict[str, float]:
    """P/R/F1 (+ counts) at a threshold chosen elsewhere, AP50 and mAP@[.5:.95] (pycocotools)."""
    return {**prf1(preds, gts, iou=iou, conf=threshold), **coco_ap(preds, gts)}


def fit(model: nn.Module, p: TrainDetectorParams, train: DetectionData, val: DetectionData, iou: float, seed: int,
        setup: DeviceSetup, on_epoch: Callable[[dict[str, float]], None] | None = None, start: int = 0) -> FitResult:
    """Train ``p.epochs`` epochs (numbered from ``start + 1``, so a fine-tune phase continues the count of
    its pretrain phase); after each, pick the F1-maximising threshold on ``val`` and keep the weights of
    the epoch with the best validation F1 (ties keep the earlier epoch). The model ends with those
    weights. The test split is never seen here."""
    opt, sched = build_optimizer(model, p)
    loss_kw = {**{f"lambda_{k}": getattr(p.loss, k) for k in ("bbox", "conf_pos", "conf_neg", "cls")},
               "conf": p.loss.conf, "ignore_iou": p.loss.ignore_iou}
    gts = [s.boxes for s in val.samples]
    best: FitResult | None = None
    best_state: dict[str, torch.Tensor] = {}
    history: list[dict[str, float]] = []
    for epoch in range(start + 1, start + p.epochs + 1):
        train.epoch = epoch
        lr = opt.param_groups[0]["lr"]
        terms = train_epoch(model, opt, loader(train, p.batch_size, True, seed, p.workers), setup, p.grad_clip,
                            desc=f"detector epoch {epoch}/{start + p.epochs}", **loss_kw)
        sched.step()
        preds = predict_data(model, val, setup, p.batch_size, p.workers, p.nms_iou, p.top_k)
        thr, f1 = best_threshold(preds, gts, iou)
        scores = score_split(preds, gts, thr, iou)
        rec = {"epoch": epoch, **terms, "lr": lr, "val_f1": f1, "val_threshold": thr,
               "val_precision": scores["precision"], "val_recall": scores["recall"], "val_ap50": scores["ap50"]}
        history.append(rec)
        if best is None or f1 > best.val_f1:
            best = FitResult(epoch, f1, thr)
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(rec)
    assert best is not None  # p.epochs >= 1
    model.load_state_dict(best_state)
    best.history = history
    return best


def save_detector(path: Path, model: SqueezeDet, **meta: Any) -> None:
    """State dict plus everything needed to rebuild the network (anchors, size, width, classes)."""
    torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "anchors": model.anchors_wh.cpu().tolist(), "image_size": list(model.image_size),
                "width": model.width, "num_classes": model.num_classes, "stride": model.stride,
                "norm": model.norm, **meta}, path)


def load_detector(path: Path) -> tuple[SqueezeDet, dict[str, Any]]:
    """Inverse of :func:`save_detector`: the model in eval mode and the saved metadata."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PipelineError(f"{path}: detector checkpoint not found") from None
    except Exception as exc:  # torch's own message is long and multi-line
        raise PipelineError(f"{path}: unreadable detector checkpoint ({type(exc).__name__})") from None
    model = SqueezeDet(ckpt["num_classes"], ckpt["anchors"], ckpt["image_size"], width=ckpt["width"],
                       stride=ckpt["stride"], norm=ckpt["norm"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}
