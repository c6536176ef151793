"""Does the detector learn? Train SqueezeDet on a set folder with params overrides and print, per epoch,
the loss terms and the F1 on the training images themselves (no augmentation), on R_val and on R_test,
plus how well the anchors cover the ground truth.

    python bench/detector_learning.py --train data/sets/R/R --real data/real [--images 4] \
        [--set stride=8 batch_norm=true input_size=[672,896] epochs=40 ...]

``--images N`` keeps the first N training images (the overfit check: train F1 should reach ~1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from torchvision.ops import box_iou

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detection.detector.data import DetectionData, training_data  # noqa: E402
from pipeline.detection.detector.sets import load_samples  # noqa: E402
from pipeline.detection.detector.squeezedet import SqueezeDet, kmeans_anchors  # noqa: E402
from pipeline.detection.detector.training import fit, predict_data, score_split  # noqa: E402
from pipeline.metrics.detection import best_threshold  # noqa: E402
from pipeline.fields import parse_section  # noqa: E402
from pipeline.detection.params import TrainDetectorParams  # noqa: E402
from pipeline.train.device import deterministic, pick_device  # noqa: E402


def anchor_coverage(model: SqueezeDet, data: DetectionData) -> dict[str, float]:
    """Best anchor IoU per ground-truth box (network-input pixels): how many gt get a well-placed anchor."""
    best = []
    for i in range(len(data)):
        _, boxes = data[i]
        if len(boxes):
            best.append(box_iou(boxes, model.anchors_xyxy).max(1).values)
    b = torch.cat(best)
    return {"gt": len(b), "best_iou_median": float(b.median()), "gt_best_iou_gt_0.5": int((b > 0.5).sum()),
            "gt_best_iou_lt_0.3": int((b < 0.3).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True, help="a folder with coco.json (e.g. data/sets/R/R)")
    ap.add_argument("--real", type=Path, default=Path("data/real"))
    ap.add_argument("--images", type=int, default=None, help="keep the first N training images")
    ap.add_argument("--rendered", action="store_true",
                    help="the training images are synthetic or refined (photometric=true randomises their camera)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--select-on-train", action="store_true",
                    help="keep the epoch (and threshold) best on the training images, not on R_val (overfit check)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="train_detector overrides")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args()
    raw = (yaml.safe_load(args.params.read_text()) or {}).get("train_detector", {})
    for item in args.set:
        key, _, value = item.partition("=")
        node = raw
        *parents, leaf = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    p = parse_section(TrainDetectorParams, raw, "train_detector")
    samples = [dataclasses.replace(s, rendered=args.rendered) for s in load_samples(args.train, p.target)[:args.images]]
    train = training_data(samples, p, args.seed)
    train_eval = DetectionData(samples, p.input_size)
    val = DetectionData(load_samples(args.real / "val", p.target), p.input_size)
    test = DetectionData(load_samples(args.real / "test", p.target), p.input_size)
    setup = pick_device(p.device)
    start = time.perf_counter()
    with deterministic(args.seed):
        model = SqueezeDet(1, kmeans_anchors(train.box_sizes(), p.anchors, args.seed), p.input_size, p.width,
                           p.dropout, p.stride, p.batch_norm)
        cover = anchor_coverage(model, train_eval)
        print(json.dumps({"images": len(samples), **cover}))

        def on_epoch(rec: dict[str, float]) -> None:
            keep = ("epoch", "loss", "bbox", "conf_pos", "conf_neg", "n_pos", "iou_pos", "val_f1", "val_ap50")
            print(json.dumps({k: round(rec[k], 3) for k in keep}), flush=True)

        result = fit(model, p, train, train_eval if args.select_on_train else val, 0.5, args.seed, setup, on_epoch)
    seconds = time.perf_counter() - start
    out = {"best_epoch": result.best_epoch, "val_f1": result.val_f1, "threshold": result.threshold,
           "seconds": round(seconds, 1), "params": {k: v for k, v in dataclasses.asdict(p).items()
                                                    if k in ("stride", "batch_norm", "input_size", "width",
                                                             "epochs", "lr", "anchors")}}
    for name, data in (("train", train_eval), ("test", test)):
        preds = predict_data(model, data, setup, p.batch_size, 0, p.nms_iou, p.top_k)
        gts = [x.boxes for x in data.samples]
        s = score_split(preds, gts, result.threshold, 0.5)
        out[f"{name}_f1"], out[f"{name}_ap50"] = round(s["f1"], 3), round(s["ap50"], 3)
        out[f"{name}_f1_at_own_best_threshold"] = round(best_threshold(preds, gts, 0.5)[1], 3)
        # the same at IoU 0.3: how much of the gap is localisation (a box near the head) vs confidence
        out[f"{name}_f1_iou0.3_own_threshold"] = round(best_threshold(preds, gts, 0.3)[1], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
