"""The anime classify stage's measurements, real faces next to each GAN variant's faces.

* Detector: animeface's detection rate and likelihood on a seeded subset of the training faces and of
  each variant's faces (same count).
* Attribute classifier (ours: a small CNN, fixed epochs) trained on the real training faces: accuracy on
  held-out real faces; on generated faces, accuracy against the condition they were drawn for
  (conditional variants) and the predicted class shares (all variants; a collapsed set piles into few).
* Fréchet distance and KID in that classifier's penultimate features ("fd_attrclf"; not FID, which needs
  Inception weights that cannot be downloaded here). Real test vs real train is the reference, and each
  variant is measured with as many faces as the real test set, since FD grows as samples shrink.
* MS-SSIM between random pairs of distinct faces (torchmetrics), over the whole set and within classes:
  higher than the training set's means less diverse, and near 1 means mode collapse.

Every training run (``<variant>-<seed>``) is measured on its own (``runs``); ``summarise`` then gives each
variant the mean and t-interval over its seeds (``variants``) and raises the collapse alarm on the mean
pairwise MS-SSIM: above the real faces' by more than ``COLLAPSE_SIMILARITY_MARGIN`` (0.15), the variant is
``collapsed`` (bold in the table, tagged in MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.anime.data import FaceSet, to_unit
from pipeline.anime.face_detector import detection_stats
from pipeline.anime.nets import AttributeClassifier
from pipeline.anime.params import AnimeClassifyParams
from pipeline.metrics.distances import feature_distance
from pipeline.metrics.generative import collapse_alarm, collapse_label, ms_ssim_diversity
from pipeline.metrics.stats import fmt_ci, over_seeds
from pipeline.train.classifier import features, fit_classifier, predict_proba

FEATURE_SPACE = "attribute classifier (ours, trained on the real training faces), penultimate layer"


@dataclass(frozen=True)
class Generated:
    x: np.ndarray  # (n, 64, 64, 3) uint8
    y: np.ndarray  # the condition each face was drawn for
    conditional: bool


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:min(k, n)])


def diversity(x: np.ndarray, y: np.ndarray, pairs: int, seed: int) -> dict[str, float | None]:
    """Mean MS-SSIM of random pairs over the set and averaged over classes (classes with >= 2 faces)."""
    unit = x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    within = [ms_ssim_diversity(unit[y == c], max(2, pairs // len(np.unique(y))), seed) for c in np.unique(y)
              if (y == c).sum() >= 2]
    return {"ms_ssim": ms_ssim_diversity(unit, pairs, seed),
            "ms_ssim_within_class": float(np.mean(within)) if within and len(np.unique(y)) > 1 else None}


def evaluate(p: AnimeClassifyParams, train: FaceSet, test: FaceSet, classes: list[str],
             generated: dict[str, Generated]) -> dict:
    """All metrics of the classify stage as a nested dict, one entry per generated set under ``runs``."""
    k = len(classes)
    pick = _subset(len(train.x), p.detector_images, p.seed)
    out: dict = {"classes": classes, "feature_space": FEATURE_SPACE,
                 "real": {"train_faces": len(train.x), "test_faces": len(test.x),
                          "detector": detection_stats(train.x[pick], p.detector_upscale, "detector: real"),
                          **diversity(train.x, train.y, p.ms_ssim_pairs, p.seed)},
                 "runs": {}}
    clf = None
    if k > 1:
        clf = fit_classifier(lambda: AttributeClassifier(k, p.width), to_unit(train.x), train.y, p.epochs,
                             p.batch_size, p.lr, p.seed, p.device, "attribute classifier")
        f_train = features(clf, to_unit(train.x))
        out["real"]["accuracy"] = float((predict_proba(clf, to_unit(test.x)).argmax(1) == test.y).mean())
        out["reference"] = _distance(p, f_train, features(clf, to_unit(test.x)))  # real test vs real train
    for name, gen in generated.items():
        sub = _subset(len(gen.x), p.detector_images, p.seed)
        row: dict = {"faces": len(gen.x), "detector": detection_stats(gen.x[sub], p.detector_upscale,
                                                                       f"detector: {name}"),
                     **diversity(gen.x, gen.y if gen.conditional else np.zeros(len(gen.y), int), p.ms_ssim_pairs,
                                 p.seed)}
        if clf is not None:
            pred = predict_proba(clf, to_unit(gen.x)).argmax(1)
            row["predicted_share"] = {c: float((pred == i).mean()) for i, c in enumerate(classes)}
            if gen.conditional:
                row["accuracy_by_condition"] = float((pred == gen.y).mean())
            same_n = _subset(len(gen.x), len(test.x), p.seed)
            row["distance"] = _distance(p, f_train, features(clf, to_unit(gen.x[same_n])))
        out["runs"][name] = row
    return out


def summarise(metrics: dict, runs: dict[str, tuple[str, int]]) -> dict:
    """``metrics`` (from ``evaluate``) with ``variants``: each variant's runs merged into mean ± CI over its
    seeds, and ``collapsed``: {variant: the collapse alarm on its mean pairwise MS-SSIM against real}."""
    variants = over_seeds(metrics["runs"], runs)
    collapsed = {v: collapse_alarm(s["ms_ssim"]["mean"], metrics["real"]["ms_ssim"], "similarity")
                 for v, s in variants.items()}
    return {**metrics, "variants": variants, "collapsed": collapsed}


def _distance(p: AnimeClassifyParams, f_real: np.ndarray, f_other: np.ndarray) -> dict[str, float]:
    d = feature_distance(f_other, f_real, p.kid_subsets, p.kid_subset_size, p.seed)
    return {"fd_attrclf": d["fd"], "kid_attrclf": d["kid_mean"], "kid_attrclf_std": d["kid_std"], "n": d["n_a"]}


def table(metrics: dict) -> str:
    """The note's table: detector, classifier accuracy, feature distance, MS-SSIM per variant (mean ± 95 %
    t-interval over its seeds, which the seeds column names; a collapsed variant's name in bold)."""
    f = fmt_ci
    real, ref = metrics["real"], metrics.get("reference", {})
    head = ("| faces | seeds | detector rate | mean likelihood (detected) | classifier acc. "
            "| FD (attr.-clf. features) | KID (attr.-clf.) | MS-SSIM pairs | MS-SSIM within class |\n"
            + "|---" * 9 + "|")
    rows = [f"| real (detector, MS-SSIM: train; acc., FD: test vs train) | – | "
            f"{f(real['detector']['detection_rate'])} | "
            f"{f(real['detector']['mean_likelihood_detected'])} | {f(real.get('accuracy'))} | "
            f"{f(ref.get('fd_attrclf'))} | {f(ref.get('kid_attrclf'))} | {f(real['ms_ssim'])} | "
            f"{f(real['ms_ssim_within_class'])} |"]
    for name, r in metrics["variants"].items():
        dist = r.get("distance", {})
        label = collapse_label(name, metrics["collapsed"][name])
        rows.append(f"| {label} | {', '.join(map(str, r['seeds']))} | {f(r['detector']['detection_rate'])} | "
                    f"{f(r['detector']['mean_likelihood_detected'])} | {f(r.get('accuracy_by_condition'))} | "
                    f"{f(dist.get('fd_attrclf'))} | {f(dist.get('kid_attrclf'))} | {f(r['ms_ssim'])} | "
                    f"{f(r['ms_ssim_within_class'])} |")
    return "\n".join([head, *rows])
