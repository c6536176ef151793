"""Distribution distances between image sets: Fréchet distance and KID (polynomial-kernel MMD).

``inception_distances`` gives the standard FID/KID (Inception-v3 pool features, torchmetrics on top
of torch-fidelity's TF-ported network) and never downloads weights. ``feature_distance`` gives the
same two statistics in any other feature space; its Fréchet value is deliberately called ``fd``,
never "fid", so it is not mistaken for the Inception-based number.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from pipeline.errors import PipelineError
from pipeline.nn.weights import WeightsSource

INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                         + INCEPTION_WEIGHTS_FILE)


class InceptionWeightsMissing(PipelineError):
    """The FID Inception-v3 weights file is not available locally."""


INCEPTION_WEIGHTS = WeightsSource(
    f"FID Inception weights {INCEPTION_WEIGHTS_FILE}", INCEPTION_WEIGHTS_FILE, "weights_path",
    f"download it once from {INCEPTION_WEIGHTS_URL} and pass its path as {{key}} "
    "(it is never downloaded automatically)",
    # torch-fidelity hosts the same converted TF weights (same key layout) under this name.
    aliases=("weights-inception-2015-12-05-6726825d.pth",), folders=True, error=InceptionWeightsMissing)


def _np(x: Any) -> np.ndarray:
    """float64 numpy array from a tensor or array."""
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)


def feature_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of an (N, D) feature matrix."""
    f = _np(features)
    if f.ndim != 2 or len(f) < 2:
        raise PipelineError(f"need an (N, D) feature matrix with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), as pytorch-fid computes it.

    d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)). A non-finite matrix root
    (singular product) is retried with ``eps`` added to both diagonals; a negligible imaginary
    part from numerical error is dropped.
    """
    from scipy import linalg  # imported when first used
    mu1, mu2, s1, s2 = (np.atleast_1d(_np(mu1)), np.atleast_1d(_np(mu2)),
                        np.atleast_2d(_np(sigma1)), np.atleast_2d(_np(sigma2)))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise PipelineError(f"statistics do not match: means {mu1.shape} vs {mu2.shape}, "
                            f"covariances {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(s1)) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _poly_mmd(x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float | None, coef: float) -> float:
    """Unbiased MMD^2 with the kernel (gamma <x, y> + coef)^degree (torchmetrics' formula)."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx, k_yy, k_xy = ((a @ b.T * g + coef) ** degree for a, b in ((x, x), (y, y), (x, y)))
    m = x.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def kid(feat1: Any, feat2: Any, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and (population) std of the unbiased polynomial MMD^2.

    Each of ``subsets`` draws ``subset_size`` rows of each set without replacement (clipped to the
    smaller set). With the same seed it draws exactly what torchmetrics' KID draws after
    ``torch.manual_seed(seed)``.
    """
    x, y = torch.as_tensor(_np(feat1)), torch.as_tensor(_np(feat2))
    m = min(subset_size, len(x), len(y))
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or m < 2:
        raise PipelineError(f"KID needs two (N, D) feature sets with N >= 2, got {tuple(x.shape)} and {tuple(y.shape)}")
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        xs = x[torch.randperm(len(x), generator=gen)[:m]]
        ys = y[torch.randperm(len(y), generator=gen)[:m]]
        scores.append(_poly_mmd(xs, ys, degree, gamma, coef))
    return float(np.mean(scores)), float(np.std(scores))


def feature_distance(feats_a: Any, feats_b: Any, kid_subsets: int = 100, kid_subset_size: int = 1000,
                     seed: int = 0) -> dict[str, float | int]:
    """Fréchet distance (``fd``) and KID in an arbitrary feature space; the caller names it."""
    mu_a, s_a = feature_stats(feats_a)
    mu_b, s_b = feature_stats(feats_b)
    k_mean, k_std = kid(feats_a, feats_b, kid_subsets, kid_subset_size, seed=seed)
    return {"fd": frechet_distance(mu_a, s_a, mu_b, s_b), "kid_mean": k_mean, "kid_std": k_std,
            "n_a": len(_np(feats_a)), "n_b": len(_np(feats_b))}


def resolve_inception_weights(weights_path: str | Path | None, param: str = "weights_path") -> Path:
    """The local Inception weights file: ``weights_path`` (a file or a folder holding it), or,
    when None, torch hub's checkpoint folder. Never downloads. ``param`` names the setting in errors."""
    return INCEPTION_WEIGHTS.resolve(weights_path, param)


def _load_inception(path: Path, dims: int) -> torch.nn.Module:
    """torchmetrics' Inception-v3 (torch-fidelity port) with local weights, in eval mode."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
        return NoTrainInceptionV3("inception-v3-compat", [str(dims)], feature_extractor_weights_path=str(path))
    except ModuleNotFoundError as exc:
        raise PipelineError(f"FID needs torch-fidelity ({exc}); pip install torch-fidelity") from None
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        raise PipelineError(f"{path} is not a usable Inception state dict: {str(exc).splitlines()[0]}") from None


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """uint8 (B, 3, H, W) batches; float images are taken to be in [0, 1]."""
    seq = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    for b in seq:
        if b.dtype != torch.uint8:
            b = (b.float().clamp(0, 1) * 255).round().to(torch.uint8)
        yield b


@torch.no_grad()
def _extract(net: torch.nn.Module, images: Any, batch_size: int, device: str) -> torch.Tensor:
    """(N, D) float64 Inception features of all images."""
    feats = [net(b.to(device)).double().cpu() for b in _batches(images, batch_size)]
    if not feats:
        raise PipelineError("no images given to inception_distances")
    return torch.cat(feats)


class _Precomputed(torch.nn.Module):
    """Feature 'extractor' for torchmetrics that passes already extracted features through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def inception_features(images: Any, weights_path: str | None, dims: int = 2048, batch_size: int = 32,
                       device: str = "cpu") -> torch.Tensor:
    """(N, dims) float64 pool features of the FID Inception-v3 (torch-fidelity's port, local weights).

    Images are (N, 3, H, W) uint8 (or float in [0, 1]) tensors or iterables of such batches. Raises
    InceptionWeightsMissing if the weights file is not present locally.
    """
    net = _load_inception(resolve_inception_weights(weights_path), dims).to(device)
    return _extract(net, images, batch_size, device)


def fid_kid(fa: torch.Tensor, fb: torch.Tensor, kid_subsets: int = 100, kid_subset_size: int = 1000,
            seed: int = 0) -> dict[str, float | int]:
    """FID and KID from Inception features with torchmetrics' FrechetInceptionDistance and
    KernelInceptionDistance (``fa`` plays their "real" role), with both sample sizes."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if min(len(fa), len(fb)) < 2:
        raise PipelineError(f"FID needs at least 2 images per set, got {len(fa)} and {len(fb)}")
    dims = fa.shape[1]
    fid = FrechetInceptionDistance(feature=_Precomputed(dims))
    fid.update(fa, real=True)
    fid.update(fb, real=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # KID's "keeps all features" notice
        kid_metric = KernelInceptionDistance(feature=_Precomputed(dims), subsets=kid_subsets,
                                             subset_size=min(kid_subset_size, len(fa), len(fb)))
    kid_metric.update(fa, real=True)
    kid_metric.update(fb, real=False)
    with torch.random.fork_rng(devices=[]):  # seeded subsets without touching the global RNG
        torch.manual_seed(seed)
        k_mean, k_std = kid_metric.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(k_mean), "kid_std": float(k_std),
            "n_a": len(fa), "n_b": len(fb)}


def inception_distances(images_a: Any, images_b: Any, weights_path: str | None, dims: int = 2048,
                        kid_subsets: int = 100, kid_subset_size: int = 1000, batch_size: int = 32,
                        device: str = "cpu", seed: int = 0) -> dict[str, float | int]:
    """FID and KID between two image sets with the standard FID Inception-v3 weights (see
    :func:`inception_features` and :func:`fid_kid`)."""
    fa = inception_features(images_a, weights_path, dims, batch_size, device)
    fb = inception_features(images_b, weights_path, dims, batch_size, device)
    return fid_kid(fa, fb, kid_subsets, kid_subset_size, seed)
