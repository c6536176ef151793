"""Evaluation across detectors and crop sets (the ``evaluate`` stage's library).

* test metrics of every (training set, seed) summarised per set as mean and t-interval over seeds;
* distances between crop sets (cS, cR_train, every cS+): FID/KID with the FID Inception weights when
  they are available, and always Fréchet distance / KID in the feature space of the detector trained
  on R_train (``squeezedet_R``), which is never called FID;
* label preservation: the R_train detectors run over S and every S+ with their validation threshold;
  a recall drop means the refiner erased or moved people (seed Fig. 3.5).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from pipeline.detection.detector.data import DetectionData
from pipeline.detection.detector.sets import load_samples
from pipeline.detection.params import LOSS_TERMS, parse_set
from pipeline.errors import PipelineError
from pipeline.io.images import load_rgb
from pipeline.detection.crops.manifest import read_manifest
from pipeline.metrics.detection import prf1
from pipeline.metrics.distances import feature_distance, fid_kid
from pipeline.metrics.stats import diff_ci, mean_ci, regression
from pipeline.detection.detector.squeezedet import SqueezeDet
from pipeline.detection.detector.training import predict_data
from pipeline.stage import run_name as run_key
from pipeline.train.device import DeviceSetup

FEATURE_SPACE = "squeezedet_R"  # pooled fire11 features of the detector trained on R_train
SUMMARY_KEYS = ("test_f1", "test_precision", "test_recall", "test_ap50", "test_map", "val_f1", "train_images")


def read_run_metrics(folder: Path, sets: Sequence[str], seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    """``folder/<set>-<seed>.json`` for every pair; a missing file names the stage that writes it."""
    out = {}
    for s in sets:
        for seed in seeds:
            path = folder / f"{run_key(s, seed)}.json"
            try:
                out[run_key(s, seed)] = json.loads(path.read_text())
            except FileNotFoundError:
                raise PipelineError(f"{path}: missing; run train_detector@{run_key(s, seed)} first") from None
    return out


def summarise(runs: dict[str, dict[str, float]], sets: Sequence[str], seeds: Sequence[int],
              level: float) -> dict[str, dict[str, dict[str, float]]]:
    """Per set and metric: mean, std, t-interval at ``level`` and n over the seeds."""
    return {s: {k: mean_ci([runs[run_key(s, seed)][k] for seed in seeds], level) for k in SUMMARY_KEYS}
            for s in sets}


def comparisons(runs: dict[str, dict[str, float]], sets: Sequence[str], seeds: Sequence[int], level: float,
                refiners: Sequence[str], metric: str = "test_f1") -> list[dict[str, Any]]:
    """The differences the study asks about, each as Welch's interval over seeds (:func:`diff_ci`):
    every set against R (does it beat real data?), every set without R_train in any phase against S
    (does refinement or pretraining beat the raw renders?) and every ``R+X`` against ``R+S`` when that
    set was trained."""
    per = {s: [runs[run_key(s, seed)][metric] for seed in seeds] for s in sets}
    no_real = {s for s in sets if all(p.source != "R" for p in parse_set(s, refiners))}
    pairs = [(s, "R") for s in sets if s != "R" and "R" in per]
    pairs += [(s, "S") for s in sets if s != "S" and s in no_real and "S" in per]
    pairs += [(s, "R+S") for s in sets if s.startswith("R+") and s != "R+S" and "R+S" in per]
    return [{"a": a, "b": b, "metric": metric, **diff_ci(per[a], per[b], level)} for a, b in pairs]


def crop_images(folder: Path) -> torch.Tensor:
    """(N,3,h,w) uint8 crops listed in ``folder/manifest.csv``."""
    files = read_manifest(folder)["crop_file"]
    if len(files) < 2:
        raise PipelineError(f"{folder}: distances need at least 2 crops, found {len(files)}")
    return torch.from_numpy(np.stack([load_rgb(folder / f) for f in files])).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def embed(model: SqueezeDet, images: torch.Tensor, setup: DeviceSetup, batch_size: int = 32) -> np.ndarray:
    """(N,D) float64 detector features of uint8 images (N,3,h,w)."""
    model = model.to(setup.device).eval()
    feats = []
    for batch in images.split(batch_size):
        x = batch.to(setup.device).float().div(127.5).sub(1.0)
        with setup.autocast():
            feats.append(model.embed(x).double().cpu())
    return torch.cat(feats).numpy()


def distances(feats: dict[str, np.ndarray], refs: Sequence[str], kid_subsets: int, kid_subset_size: int,
              inception: dict[str, torch.Tensor] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """``out[set][ref]``: Fréchet distance / KID in FEATURE_SPACE between crop set ``set`` and each
    reference set, with both sample sizes; with ``inception`` features also FID/KID (torchmetrics)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for a, r in [(a, r) for a in feats for r in refs if a != r]:
        d = feature_distance(feats[a], feats[r], kid_subsets, kid_subset_size)
        row = {f"fd_{FEATURE_SPACE}": d["fd"], f"kid_{FEATURE_SPACE}": d["kid_mean"],
               f"kid_std_{FEATURE_SPACE}": d["kid_std"], "n_a": d["n_a"], "n_b": d["n_b"]}
        if inception is not None:
            inc = fid_kid(inception[a], inception[r], kid_subsets, kid_subset_size)
            row.update({"fid": inc["fid"], "kid": inc["kid_mean"], "kid_std": inc["kid_std"]})
        out.setdefault(a, {})[r] = row
    return out


def label_preservation(detectors: Sequence[tuple[SqueezeDet, float]], datasets: dict[str, Path], target: str,
                       iou: float, setup: DeviceSetup, batch_size: int = 8) -> dict[str, dict[str, Any]]:
    """Recall of each (model, threshold) on each dataset against its own ground truth; for every dataset
    but ``S`` also the per-detector drop ``recall(S) - recall(dataset)``; mean and CI over detectors."""
    recalls: dict[str, list[float]] = {}
    for name, root in datasets.items():
        samples = load_samples(root, target)  # read and validated once, shared by every detector
        for model, thr in detectors:
            data = DetectionData(samples, model.image_size)
            preds = predict_data(setup.prepare(model), data, setup, batch_size)
            recalls.setdefault(name, []).append(prf1(preds, [s.boxes for s in data.samples], iou, thr)["recall"])
    out: dict[str, dict[str, Any]] = {}
    for name, rs in recalls.items():
        out[name] = {"recall": mean_ci(rs), "recall_runs": rs}
        if name != "S" and "S" in recalls:
            out[name]["drop"] = mean_ci([a - b for a, b in zip(recalls["S"], rs)])
    return out


def f1_vs_distance(summary: dict[str, dict[str, dict[str, float]]], dist: dict[str, dict[str, dict[str, float]]],
                   key: str, ref: str = "R") -> dict[str, Any]:
    """Mean test F1 of every single-source set against its crops' distance ``key`` to ``ref`` (Fig. 4.8)."""
    names = [s for s in summary if s in dist and ref in dist[s]]
    x = [dist[s][ref][key] for s in names]
    y = [summary[s]["test_f1"]["mean"] for s in names]
    return {"sets": names, "x": x, "y": y, "distance": key, **regression(x, y)}


def refiner_summaries(refine: Any, result: dict[str, Any], refiner_metrics: dict[str, dict[str, float]]
                      ) -> dict[str, tuple[dict[str, Any], dict[str, float]]]:
    """Per refiner config in ``refine.run``: (params, metrics) of its comparison run in MLflow.

    Params: the config's arch, skip and every loss weight (0 for a term it does not use, so that all
    configs share the axes of MLflow's parallel-coordinates plot). Metrics: test F1 mean/std/t-interval
    over seeds of its own refined set (``f1_test*``) and of every other set that contains it
    (``f1_test.<set>``), its AP50, recall drop, distance to cR_train, and the refiner's final losses and
    training time (``refiner_*``). ``f1_test`` sorts first, which makes it the metric axis MLflow's compare
    view picks by default.
    """
    from pipeline.detection.detector.sets import parse_set, refiners_of

    key = result["distance_key"]
    out = {}
    for name in refine.run:
        spec = refine.spec(name)
        trains = spec.arch != "identity"  # the identity refiner has no losses
        params = {"name": name, "arch": spec.arch, "skip": spec.skip,
                  **{f"loss.{term}": float(spec.losses.get(term, 0.0)) if trains else 0.0 for term in LOSS_TERMS}}
        metrics: dict[str, float] = {}
        for set_name, s in result["sets"].items():
            if name not in refiners_of(parse_set(set_name, refine.run)):
                continue
            suffix = "" if set_name == name else f".{set_name}"
            f1 = s["test_f1"]
            metrics.update({f"f1_test{suffix}": f1["mean"], f"f1_test_std{suffix}": f1["std"],
                            f"f1_test_ci_low{suffix}": f1["lo"], f"f1_test_ci_high{suffix}": f1["hi"],
                            f"test_ap50{suffix}": s["test_ap50"]["mean"]})
        dist = result["distances"].get(name, {}).get("R", {})
        if key in dist:
            metrics["fid_to_R" if key == "fid" else "fd_to_R"] = dist[key]
        drop = result["label_preservation"].get(name, {}).get("drop", {})
        if "mean" in drop:
            metrics["recall_drop"] = drop["mean"]
        metrics.update({f"refiner_{k}": v for k, v in refiner_metrics.get(name, {}).items()
                        if k not in ("refined", "lr")})
        ordered = dict(sorted(metrics.items(), key=lambda kv: (not kv[0].startswith("f1_test"), kv[0])))
        out[name] = (params, {k: float(v) for k, v in ordered.items() if v is not None and v == v})
    return out
