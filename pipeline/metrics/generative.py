"""Scores for generated samples that several domains share: inception score and MS-SSIM diversity.

* ``inception_score``: exp(E_x KL(p(y|x) || p(y))) over ``splits`` folds (Salimans et al. 2016), mean and
  std, from class probabilities of *any* classifier. The caller names the classifier: "IS with a
  digit classifier" is not the Inception-v3 IS and is never reported as such.
* ``ms_ssim_diversity``: mean MS-SSIM (torchmetrics) between random pairs of distinct samples of one set.
  Lower means more diverse; a collapsed generator scores near 1. Small images use fewer scales, so
  the smallest scale is still larger than the Gaussian window.
* ``collapse_alarm``: whether a generator's diversity is far below real's, so that a report can flag it
  and a sweep cannot rank a collapsed generator first. For a similarity (MS-SSIM between random pairs,
  higher = less diverse) the alarm is ``generated > real + COLLAPSE_SIMILARITY_MARGIN``; for a distance
  (mean pairwise distance, higher = more diverse) it is ``generated < COLLAPSE_DISTANCE_RATIO * real``.
"""

from __future__ import annotations

import numpy as np
import torch

# Wang et al. 2003's five scale weights; small images use the first k, renormalised.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and std over ``splits`` folds of exp(E KL(p(y|x) || p(y))); ``probs`` is (N, classes)."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(f"inception score needs (N >= splits={splits}, classes) probabilities, got {p.shape}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.where(part > 0, part * (np.log(np.maximum(part, 1e-300)) - np.log(np.maximum(marginal, 1e-300))), 0)
        scores.append(float(np.exp(kl.sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def ms_ssim_settings(size: int) -> tuple[int, tuple[float, ...]]:
    """Gaussian kernel size and scale weights that fit an image side of ``size`` pixels."""
    for kernel in (11, 7, 5, 3):
        for k in range(5, 0, -1):
            if size > (kernel - 1) * 2 ** (k - 1):
                betas = MS_SSIM_BETAS[:k]
                return kernel, tuple(b / sum(betas) for b in betas)
    raise ValueError(f"image side {size} is too small for MS-SSIM")


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pair MS-SSIM of (B, C, H, W) images in [0, 1] (torchmetrics), scales chosen by ``ms_ssim_settings``."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as msssim

    kernel, betas = ms_ssim_settings(min(a.shape[-2:]))
    return msssim(a.float(), b.float(), data_range=1.0, kernel_size=kernel, betas=betas, reduction="none",
                  normalize="relu")


def ms_ssim_diversity(images: np.ndarray | torch.Tensor, pairs: int = 200, seed: int = 0,
                      batch: int = 64) -> float:
    """Mean MS-SSIM over ``pairs`` random pairs of distinct images, (N, C, H, W) in [0, 1]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if len(x) < 2:
        raise ValueError("MS-SSIM diversity needs at least 2 images")
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, len(x), (pairs,), generator=g)
    j = (i + torch.randint(1, len(x), (pairs,), generator=g)) % len(x)  # never a pair of one image
    vals = [ms_ssim(x[i[s:s + batch]], x[j[s:s + batch]]) for s in range(0, pairs, batch)]
    return float(torch.cat(vals).mean())


COLLAPSE_SIMILARITY_MARGIN = 0.15  # MS-SSIM above real by more than this: collapsed
COLLAPSE_DISTANCE_RATIO = 0.5  # mean pairwise distance below half of real's: collapsed


def collapse_alarm(generated: float | None, real: float | None, measure: str = "similarity") -> bool:
    """True when ``generated``'s diversity is far below ``real``'s (thresholds in the module docstring).

    ``measure`` is "similarity" (MS-SSIM-like, higher = less diverse) or "distance" (higher = more diverse).
    No number on either side raises no alarm."""
    if measure not in ("similarity", "distance"):
        raise ValueError(f"unknown diversity measure {measure!r} (known: similarity, distance)")
    if generated is None or real is None or generated != generated or real != real:
        return False
    if measure == "similarity":
        return bool(generated > real + COLLAPSE_SIMILARITY_MARGIN)
    return bool(generated < COLLAPSE_DISTANCE_RATIO * real)


def collapse_label(name: str, collapsed: bool) -> str:
    """A report table's row name: ``**name** (collapsed)`` in bold when the alarm is raised."""
    return f"**`{name}` (collapsed)**" if collapsed else f"`{name}`"
