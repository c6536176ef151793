"""Measuring sound-conditioned image generators with a digit classifier trained on real images only.

* IS (digit classifier): exp E KL(p(y|x) || p(y)) over ``is_splits`` folds, mean ± std. Not the
  Inception-v3 IS. Row (a) of the ablation table is the same score on real test images: the level a
  generator that draws real-looking, class-balanced digits would reach (at most the number of classes).
* FD (digit-classifier features): Fréchet distance between generated and real test images in that
  classifier's penultimate features (not FID); the real row compares an equally large draw of real
  training images with the real test images, which is what "as good as real" looks like at that size.
* Class agreement: share of generated images the classifier assigns to the class spoken in the clip
  (a stand-in for the seed's human correlation test); on real test images it is the classifier's accuracy.
* Within-class MS-SSIM: mean over classes of the MS-SSIM of random image pairs of one class (lower =
  more diverse; a generator that ignores z scores near 1). It is the domain's collapse alarm: a variant
  whose mean over seeds exceeds real test images' by more than 0.15 (``collapse_alarm``) is flagged.
* Seeds: every variant is trained once per seed; the tables give per variant the mean and the 95 %
  Student-t interval over its seeds (``over_seeds``); the metrics keep every run's figures too.
* Volume experiment (seed §5.3): the test clips scaled by each gain, features recomputed, images drawn
  with the same z; per gain the agreement, the mean ink and the mean change against gain 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.audio.features import Embedder, Standardizer, condition_vectors
from pipeline.audio.gan import generate, to_unit
from pipeline.audio.nets import DigitClassifier, Generator
from pipeline.audio.params import AudioEvaluateParams, AudioFeaturesParams, GanVariant
from pipeline.metrics.distances import feature_distance
from pipeline.metrics.generative import collapse_alarm, collapse_label, inception_score, ms_ssim_diversity
from pipeline.metrics.stats import fmt_ci
from pipeline.train.classifier import features, fit_classifier, predict_proba

FD_NAME = "fd_digitclf"


@dataclass(frozen=True)
class Generated:
    images: np.ndarray  # (N, C, H, W) uint8 at the real images' size
    label: np.ndarray  # (N,) class of the clip that conditioned each image


def train_digit_classifier(p: AudioEvaluateParams, images: np.ndarray, labels: np.ndarray, n_classes: int):
    """The evaluator: a small CNN fitted on REAL training images only (fixed epochs, no test peeking)."""
    x = to_unit(images, images.shape[-1]).numpy()
    return fit_classifier(lambda: DigitClassifier(images.shape[1], n_classes, size=images.shape[-1]), x, labels,
                          p.epochs, p.batch_size, p.lr, p.seed, p.device, "digit classifier")


def _probs_feats(clf, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = to_unit(images, images.shape[-1]).numpy()
    return predict_proba(clf, x), features(clf, x)


def class_diversity(images: np.ndarray, labels: np.ndarray, pairs: int = 50, seed: int = 0) -> float:
    """Mean over classes (with >= 2 images) of the MS-SSIM of ``pairs`` random same-class pairs."""
    vals = [ms_ssim_diversity(images[labels == c].astype(np.float32) / 255.0, pairs, seed)
            for c in np.unique(labels) if np.sum(labels == c) >= 2]
    return float(np.mean(vals)) if vals else float("nan")


def _scores(p: AudioEvaluateParams, clf, images: np.ndarray, labels: np.ndarray, ref_feats: np.ndarray) -> dict:
    probs, feats = _probs_feats(clf, images)
    # shuffled first: the folds must be random draws, and sets here come ordered by class or by clip
    order = np.random.default_rng(p.seed).permutation(len(probs))
    is_mean, is_std = inception_score(probs[order], min(p.is_splits, len(probs)))
    dist = feature_distance(feats, ref_feats, p.kid_subsets, p.kid_subset_size, p.seed)
    return {"is_mean": is_mean, "is_std": is_std, FD_NAME: dist["fd"], "kid_mean": dist["kid_mean"],
            "kid_std": dist["kid_std"], "agreement": float((probs.argmax(1) == labels).mean()),
            "ms_ssim_within_class": class_diversity(images, labels, seed=p.seed), "images": len(images)}


def evaluate(p: AudioEvaluateParams, clf, train_images: np.ndarray, test_images: np.ndarray,
             test_labels: np.ndarray, generated: dict[str, Generated]) -> dict:
    """The real-image reference row and one row per variant (nested dict; volume results are added later)."""
    _, test_feats = _probs_feats(clf, test_images)
    n_gen = max([len(g.images) for g in generated.values()] or [len(test_images)])
    rng = np.random.default_rng(p.seed)
    ref = train_images[rng.choice(len(train_images), min(n_gen, len(train_images)), replace=False)]
    real = _scores(p, clf, test_images, test_labels, features(clf, to_unit(ref, ref.shape[-1]).numpy()))
    real[FD_NAME + "_against"] = "an equally large draw of real training images"
    out = {"real": real, "variants": {}}
    for name, gen in generated.items():
        out["variants"][name] = _scores(p, clf, gen.images, gen.label, test_feats)
    return out


def volume_experiment(g: Generator, v: GanVariant, clf, audio: np.ndarray, labels: np.ndarray, gains: list[float],
                      sr: int, fp: AudioFeaturesParams, embedder: Embedder | None, zs: Standardizer,
                      size: int, seed: int, cache: dict) -> tuple[dict, dict[float, np.ndarray]]:
    """Per gain: {agreement, ink, change vs gain 1}, and the images (n, C, H, W) uint8 (same z for every gain).

    ``cache`` keeps the recomputed features per (feature, gain), shared by variants with the same feature."""
    images = {}
    for gain in gains:
        key = (v.feature, gain)
        if key not in cache:
            cache[key] = condition_vectors(audio * np.float32(gain), sr, fp, embedder, (v.feature,))[v.feature]
        with torch.no_grad():
            images[gain] = generate(g, v, zs(cache[key]), 1, seed, size)
    base = images[1.0] if 1.0 in images else images[gains[0]]
    out = {}
    for gain, im in images.items():
        pred = predict_proba(clf, to_unit(im, im.shape[-1]).numpy()).argmax(1)
        out[f"{gain:g}"] = {"agreement": float((pred == labels).mean()), "ink": float(im.mean() / 255.0),
                            "change": float(np.abs(im.astype(np.float64) - base).mean() / 255.0)}
    return out, images


def describe(v: GanVariant) -> str:
    """A short name of the variant's model for the tables, e.g. 'hinge, SN, projection'."""
    parts = [v.loss]
    parts += ["SN"] if v.spectral_norm else []
    parts += [v.conditioning]
    parts += [f"AC ×{v.aux_weight:g}"] if v.aux_weight > 0 else []
    parts += ["no matching-aware term"] if v.mismatch_weight == 0 else []
    parts += [f"mode seeking ×{v.mode_seeking:g}"] if v.mode_seeking > 0 else []
    parts += [f"EMA {v.ema:g}"] if v.ema > 0 else []
    parts += [f"{v.g_steps} G steps"] if v.g_steps > 1 else []
    parts += [f"{v.d_steps} D steps"] if v.d_steps > 1 else []
    parts += [f"{v.image_size} px"] if v.image_size != 32 else []
    return ", ".join(parts)


def _f(m: dict, key: str, digits: int = 3) -> str:
    """A cell: a per-variant summary leaf (mean ± CI over seeds) or a plain number (the real row)."""
    return fmt_ci(m.get(key), digits)


def collapsed(metrics: dict) -> dict[str, bool]:
    """The collapse alarm per variant: its within-class MS-SSIM (mean over seeds) against real test images'
    (``collapse_alarm``: more than real + 0.15 raises it)."""
    real = metrics["real"]["ms_ssim_within_class"]
    return {n: collapse_alarm((m.get("ms_ssim_within_class") or {}).get("mean"), real)
            for n, m in metrics["variants"].items()}


def _name(metrics: dict, name: str) -> str:
    return collapse_label(name, metrics.get("collapsed", {}).get(name, False))


def table4(metrics: dict, variants: dict[str, GanVariant]) -> str:
    """The ablation table in the form of seed Table 4, row (a) being real test images; each variant's cells are
    mean ± 95 % CI half-width over its seeds, a collapsed variant's name in bold."""
    head = ("| row | model | feature | seeds | IS (digit classifier) | IS / real | FD (digit-classifier features) "
            "| class agreement | within-class MS-SSIM |\n|---|---|---|---|---|---|---|---|---|")
    r = metrics["real"]
    rows = [f"| (a) | real test images (upper bound) | – | – | {r['is_mean']:.2f} | 1 | {_f(r, FD_NAME)} "
            f"| {_f(r, 'agreement')} | {_f(r, 'ms_ssim_within_class')} |"]
    for i, (name, m) in enumerate(metrics["variants"].items()):
        v = variants[name]
        rows.append(f"| ({chr(ord('b') + i)}) | {_name(metrics, name)}: {describe(v)} | {v.feature} "
                    f"| {', '.join(map(str, m['seeds']))} | {_f(m, 'is_mean', 2)} | {_f(m, 'is_ratio', 2)} "
                    f"| {_f(m, FD_NAME)} | {_f(m, 'agreement')} | {_f(m, 'ms_ssim_within_class')} |")
    return "\n".join([head, *rows])


def feature_groups(variants: dict[str, GanVariant]) -> list[list[str]]:
    """Groups (of 2 or more) of variants whose settings differ only in ``feature``."""
    groups: dict[tuple, list[str]] = {}
    for name, v in variants.items():
        key = tuple((k, val) for k, val in sorted(vars(v).items()) if k != "feature")
        groups.setdefault(key, []).append(name)
    return [g for g in groups.values() if len({variants[n].feature for n in g}) > 1]


def table2(metrics: dict, variants: dict[str, GanVariant], feature_info: dict) -> str:
    """The feature comparison in the form of seed Table 2: one table per group of variants that differ only
    in the sound feature; ``probe`` is a linear probe's accuracy on test voices (features stage)."""
    groups = feature_groups(variants)
    if not groups:
        return "(no two variants in `audio_train_gan.run` differ only in `feature`)"
    out = []
    for g in groups:
        lines = [f"Model: {describe(variants[g[0]])}\n",
                 "| feature | dims | linear probe acc. (test voices) | seeds | IS (digit classifier) | FD (digit-"
                 "classifier features) | class agreement |\n|---|---|---|---|---|---|---|"]
        for name in g:
            m, f = metrics["variants"][name], feature_info[variants[name].feature]
            lines.append(f"| {variants[name].feature} ({_name(metrics, name)}) | {f['dim']} | "
                         f"{f['probe_accuracy']:.3f} | {', '.join(map(str, m['seeds']))} | {_f(m, 'is_mean', 2)} | "
                         f"{_f(m, FD_NAME)} | {_f(m, 'agreement')} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def volume_table(metrics: dict, gains: list[float]) -> str:
    """Class agreement / mean ink per gain and variant (means over seeds; the agreement's ± is the 95 % CI)."""
    head = "| variant | " + " | ".join(f"×{g:g}" for g in gains) + " |\n|---|" + "---|" * len(gains)
    rows = []
    for name, m in metrics["variants"].items():
        vol = m.get("volume", {})
        cells = [f"{_f(vol[f'{g:g}'], 'agreement', 2)} / {vol[f'{g:g}']['ink']['mean']:.2f}"
                 if f"{g:g}" in vol else "–" for g in gains]
        rows.append(f"| {_name(metrics, name)} | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])
