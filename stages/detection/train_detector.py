"""Stage ``train_detector@<set>-<seed>``: train SqueezeDet on one training set with one seed (seed
Algorithm 3): keep the epoch with the best F1 on R_val, choose the confidence threshold there, then
evaluate that checkpoint once on R_test."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from pipeline.detection.detector.data import DetectionData, training_data
from pipeline.detection.detector.sets import load_phases, load_samples, parse_set
from pipeline.errors import PipelineError, cli
from pipeline.io.atomic import atomic_dir, write_csv_atomic, write_json_atomic
from pipeline.detection.predictions import predictions_json
from pipeline.detection.detector.squeezedet import SqueezeDet, kmeans_anchors, resolve_backbone_weights
from pipeline.detection.params import TrainDetectorParams
from pipeline.stage import execute, parse_paths
from pipeline.detection.detector.training import fit, predict_data, save_detector, score_split
from pipeline.train.device import deterministic, pick_device
from pipeline.detection.plots import detections_grid

WEIGHTS_KEY = "train_detector.backbone_weights"


def run(p: TrainDetectorParams, iou: float, name: str, seed: int, refiners: list[str], data: Path,
        real: Path, out: Path, plots: Path | None = None, on_epoch=None) -> dict[str, float]:
    """Train on the set folder ``data`` (stage ``training_sets``), validate and test on ``real``/val, test;
    write ``out``/model.pt, history.json, test_predictions.json (and the ``plots`` CSV of the validation
    curve); return val and test metrics.

    A pretrain>fine-tune set (``S>R``) trains ``p.pretrain_epochs`` on its first phase and keeps that
    phase's best epoch on R_val, then trains ``p.epochs`` on its second phase with a fresh optimizer and
    schedule; the epoch kept (and its threshold) is the fine-tune phase's best on R_val. The anchors are
    fitted to the boxes of both phases.
    """
    parse_set(name, refiners)
    if p.pretrained:  # fail on missing weights before any data is read
        resolve_backbone_weights(p.backbone_weights, WEIGHTS_KEY)
    phases = [training_data(samples, p, seed) for samples in load_phases(data, p.target, seed)]
    sizes = [d.box_sizes() for d in phases]
    if any(len(wh) == 0 for wh in sizes):
        raise PipelineError(f"train_detector.sets: {name!r} has no {p.target} boxes to train on")
    val = DetectionData(load_samples(real / "val", p.target), p.input_size)
    test = DetectionData(load_samples(real / "test", p.target), p.input_size)
    setup = pick_device(p.device)
    start = time.perf_counter()
    with deterministic(seed):
        model = SqueezeDet(1, kmeans_anchors(np.concatenate(sizes), p.anchors, seed), p.input_size, p.width, p.dropout, p.stride,
                           p.batch_norm)
        if p.pretrained:
            model.load_backbone(p.backbone_weights, WEIGHTS_KEY)
        model = setup.prepare(model)
        pre: dict[str, float] = {}
        if len(phases) == 2:
            first = fit(model, dataclasses.replace(p, epochs=p.pretrain_epochs), phases[0], val, iou, seed, setup,
                        on_epoch)
            pre = {"pretrain_images": float(len(phases[0].samples)), "pretrain_best_epoch": first.best_epoch,
                   "pretrain_val_f1": first.val_f1}
        result = fit(model, p, phases[-1], val, iou, seed, setup, on_epoch, start=p.pretrain_epochs if pre else 0)
        if pre:
            result.history = [{**rec, "phase": 0.0} for rec in first.history] + \
                             [{**rec, "phase": 1.0} for rec in result.history]
        train_seconds = time.perf_counter() - start
        preds = predict_data(model, test, setup, p.batch_size, p.workers, p.nms_iou, p.top_k)
    scores = score_split(preds, [s.boxes for s in test.samples], result.threshold, iou)
    with atomic_dir(out) as tmp:
        save_detector(tmp / "model.pt", model, set=name, seed=seed, target=p.target,
                      threshold=result.threshold, best_epoch=result.best_epoch)
        write_json_atomic(tmp / "history.json", result.history)
        write_json_atomic(tmp / "test_predictions.json", predictions_json(test.samples, preds))
    if plots is not None:
        write_csv_atomic(plots, result.history)
    return {"train_images": float(len(phases[-1].samples)), "train_boxes": float(len(sizes[-1])), **pre,
            "best_epoch": result.best_epoch, "val_f1": result.val_f1, "threshold": result.threshold, "train_seconds": train_seconds,
            **{f"test_{k}": float(v) for k, v in scores.items()}}


@cli
def main() -> None:
    args = parse_paths("data", "real", "out", "plots", extra=("set", "seed"))
    seed = int(args.seed)

    def body(params, log):
        log.tag("train_set", args.set)
        log.tag("seed", str(seed))
        metrics = run(params.train_detector, params.evaluate.iou, args.set, seed, params.refine.run,
                      args.data, args.real, args.out, args.plots,
                      on_epoch=lambda rec: log.metrics(rec, step=int(rec["epoch"])))
        log.image("test_detections.png", detections_grid(args.out / "test_predictions.json", metrics["threshold"]))
        return metrics

    execute("detection", f"train_detector@{args.set}-{seed}",
            lambda p: {**dataclasses.asdict(p.train_detector), "sets": None, "set": args.set, "seed": seed,
                       "iou": p.evaluate.iou}, body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
