"""The video classify stage's measurements (seed Tables 4.3 and 5.2).

* Inception score with a C3D-style classifier trained on the real training clips (never Inception-v3,
  so it is named "IS (c3d)"), of N generated clips per variant and of the real test clips as reference.
* Fréchet distance in the same classifier's feature space (``fd_c3d``; not FID).
* MS-SSIM diversity of generated frames vs real frames (one random frame per clip; lower = more diverse).
* Temporal consistency: the mean absolute change between consecutive frames, in [0, 1], generated vs real
  (a static generator scores 0, flicker scores high).
* Optional activation-maximisation samples (seed §4.4): latents optimised so that a *conditioner*
  network (a different architecture from the scorer) sees a target class; the scorer then grades them.
  The conditioner's own hit rate is reported next to the scorer's to show why it must not grade (§4.6.3).
* Seeds and the collapse alarm: every run (variant × training seed) is scored; each variant's row is the
  mean ± 95 % t-interval over its seeds (``over_seeds``), and a variant whose mean frame MS-SSIM is more
  than 0.15 above the real test clips' (``collapse_alarm``) is flagged as collapsed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.metrics.distances import feature_distance
from pipeline.metrics.generative import collapse_alarm, collapse_label, inception_score, ms_ssim_diversity
from pipeline.metrics.stats import fmt_ci, over_seeds
from pipeline.video.scorers import build_classifier
from pipeline.train.classifier import features, fit_classifier, predict_proba
from pipeline.train.pixels import to_uint8, to_unit
from pipeline.video.data import ClipSet
from pipeline.video.params import VideoClassifyParams


def temporal_change(clips: np.ndarray) -> float:
    """Mean |x_{t+1} − x_t| over clips, frames and pixels of uint8 clips (N, C, T, H, W), in [0, 1]."""
    x = np.asarray(clips, np.float32) / 255.0
    return float(np.abs(np.diff(x, axis=2)).mean())


def frames_of(clips: np.ndarray, seed: int) -> np.ndarray:
    """One random frame per clip, (N, C, H, W) in [0, 1]: pairs of frames then always come from two clips."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, clips.shape[2], len(clips))
    return clips[np.arange(len(clips)), :, t].astype(np.float32) / 255.0


def frame_diversity(clips: np.ndarray, pairs: int, seed: int) -> float:
    """MS-SSIM diversity of frames of distinct clips (torchmetrics MS-SSIM; lower = more diverse)."""
    return ms_ssim_diversity(frames_of(clips, seed), pairs, seed)


def uniform_noise(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Uniform uint8 noise clips: the floor of every score."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def fit(p: VideoClassifyParams, name: str, train: ClipSet, n_classes: int, seed: int) -> nn.Module:
    return fit_classifier(lambda: build_classifier(name, train.x.shape[1], n_classes, p.width), to_unit(train.x),
                          train.y, p.epochs, p.batch_size, p.lr, seed, p.device, f"{name} on real clips", decay=True)


@dataclass
class Scorer:
    """The grading classifier and the real reference it is compared against."""

    model: nn.Module
    name: str
    splits: int
    real_features: np.ndarray

    def score(self, clips: np.ndarray, pairs: int, seed: int) -> dict:
        """IS, fd in the scorer's feature space, MS-SSIM diversity, temporal change, class shares."""
        if len(clips) < self.splits:
            raise PipelineError(f"video_classify.is_splits: {self.splits} folds need >= {self.splits} clips, "
                                f"got {len(clips)}")
        probs = predict_proba(self.model, to_unit(clips))
        is_mean, is_std = inception_score(probs, self.splits)
        feats = features(self.model, to_unit(clips))
        n = min(len(feats), len(self.real_features))
        dist = feature_distance(feats, self.real_features, kid_subsets=50, kid_subset_size=n, seed=seed)
        return {"clips": len(clips), f"is_{self.name}": is_mean, f"is_{self.name}_std": is_std,
                f"fd_{self.name}": dist["fd"], f"kid_{self.name}": dist["kid_mean"],
                "ms_ssim": frame_diversity(clips, pairs, seed), "temporal_change": temporal_change(clips),
                "class_share": np.bincount(probs.argmax(1), minlength=probs.shape[1]).tolist()}


def activation_max(g: nn.Module, latent_dim: int, conditioner: nn.Module, n_classes: int, n: int, steps: int,
                   lr: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips whose latents were optimised (Adam) so ``conditioner`` predicts their target class (seed §4.4).

    Loss: cross-entropy of the target + ½·mean(z²), a Gaussian prior that keeps z near the training latents.
    Returns uint8 clips (n, C, T, H, W) and the targets (classes in turn).
    """
    g.eval().requires_grad_(False)
    conditioner.eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent_dim, generator=gen).requires_grad_(True)
    target = torch.arange(n) % n_classes
    opt = torch.optim.Adam([z], lr=lr)
    for _ in tqdm(range(steps), desc="activation maximisation", unit="step", leave=False):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(conditioner(g(z, target)), target) + 0.5 * z.pow(2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():  # a conditional G is also given the target class; an unconditional one ignores it
        return to_uint8(g(z, target).numpy()), target.numpy()


def hit_rate(model: nn.Module, clips: np.ndarray, target: np.ndarray) -> float:
    """Share of clips ``model`` assigns to their target class."""
    return float((predict_proba(model, to_unit(clips)).argmax(1) == target).mean())


def table(metrics: dict, scorer: str) -> str:
    """The note's table: reference rows (real test, noise), then one row per variant (mean ± 95 % t-interval
    over its seeds; collapsed variants in bold)."""
    def f(v) -> str:
        return fmt_ci(v)

    head = (f"| clips | seeds | IS ({scorer}) | fd_{scorer} | MS-SSIM (frames) | temporal change | IS of AM samples "
            f"| AM hit: conditioner / scorer |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for label, r in [("real test (reference)", metrics["real"]), ("uniform noise (floor)", metrics["noise"]),
                     *((collapse_label(n, metrics["collapsed"].get(n, False)), r)
                       for n, r in metrics["variants"].items())]:
        am = r.get("am", {})
        hits = f"{f(am.get('conditioner_hit'))} / {f(am.get('scorer_hit'))}" if am else "–"
        seeds = ", ".join(map(str, r["seeds"])) if "seeds" in r else "–"
        rows.append(f"| {label} | {seeds} | {f(r[f'is_{scorer}'])} | {f(r[f'fd_{scorer}'])} | "
                    f"{f(r['ms_ssim'])} | {f(r['temporal_change'])} | {f(am.get(f'is_{scorer}'))} | {hits} |")
    return "\n".join([head, *rows])


def evaluate(p: VideoClassifyParams, train: ClipSet, test: ClipSet, n_classes: int, samples: dict[str, np.ndarray],
             load_generator, runs: dict[str, tuple[str, int]] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """All metrics of the classify stage and the AM clips per run.

    ``samples`` and ``runs`` are keyed by run name (``<variant>-<seed>``; ``runs`` maps it to (variant, seed),
    default: each name is its own variant, seed 0). Every run's row goes under ``runs``; ``variants`` holds
    each variant's rows merged over its seeds and ``collapsed`` the collapse alarm per variant.
    ``load_generator(name)`` → (generator, latent_dim); only called when activation maximisation is on.
    """
    runs = runs if runs is not None else {n: (n, 0) for n in samples}
    model = fit(p, p.classifier, train, n_classes, p.seed)
    scorer = Scorer(model, p.classifier, p.is_splits, features(model, to_unit(train.x)))
    pairs, seed = p.ms_ssim_pairs, p.seed
    real = {**scorer.score(test.x, pairs, seed), "accuracy": hit_rate(model, test.x, test.y),
            "train_clips": len(train.x)}
    n_noise = max(len(next(iter(samples.values()))) if samples else 0, p.is_splits)
    out: dict = {"scorer": p.classifier, "real": real,
                 "noise": scorer.score(uniform_noise(n_noise, test.x.shape[1:], seed), pairs, seed), "runs": {}}
    conditioner = fit(p, p.conditioner, train, n_classes, p.seed + 1) if p.am_steps else None
    if conditioner is not None:
        real["conditioner"] = p.conditioner
        real["conditioner_accuracy"] = hit_rate(conditioner, test.x, test.y)
    am_clips: dict[str, np.ndarray] = {}
    for name, clips in samples.items():
        row = scorer.score(clips, pairs, seed)
        if conditioner is not None:
            g, latent_dim = load_generator(name)
            am, target = activation_max(g, latent_dim, conditioner, n_classes, p.am_samples, p.am_steps, p.am_lr,
                                        seed)
            graded = scorer.score(am, pairs, seed)
            row["am"] = {f"is_{p.classifier}": graded[f"is_{p.classifier}"],
                         "conditioner_hit": hit_rate(conditioner, am, target),
                         "scorer_hit": hit_rate(model, am, target)}
            am_clips[name] = am
        out["runs"][name] = row
    out["variants"] = over_seeds(out["runs"], runs)
    out["collapsed"] = {v: collapse_alarm(r["ms_ssim"]["mean"], real["ms_ssim"], "similarity")
                        for v, r in out["variants"].items()}
    return out, am_clips
