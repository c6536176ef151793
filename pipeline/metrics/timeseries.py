"""Distribution checks for generated time series, and the independent MiniRocket classifier (aeon).

* ``psd_distance``: per channel, the Welch power spectra of all windows are averaged and normalised to
  a distribution over frequency; the distance is the total variation ½Σ|p − q| (0 = same spectrum,
  1 = disjoint), averaged over channels.
* ``discriminative_score``: a post-hoc classifier (MiniRocket features + ridge, both from aeon/sklearn)
  learns real vs generated on one half of each set and is scored on the other half, and the other way
  round (two folds); held-out accuracy 0.5 means it cannot tell them apart. The score reported is
  |accuracy − 0.5|. Windows that share a group (the recording they were cut from) stay in one fold:
  sliding windows of one recording overlap (BasicMotions: 150 of 200 steps), and with a split over windows
  the classifier recognises a held-out real window by its siblings in training, so that real test windows
  against real training windows scored 0.71 instead of chance, and a generator drawing new recordings
  of the real distribution would score as far from 0.5.
"""

from __future__ import annotations

import numpy as np


def average_psd(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and the mean Welch PSD per channel, (channels, freqs), of windows (n, channels, length)."""
    from scipy.signal import welch

    freqs, p = welch(np.asarray(x, np.float64), fs=fs, nperseg=min(64, x.shape[-1]), axis=-1)
    return freqs, p.mean(axis=0)


def psd_distance(a: np.ndarray, b: np.ndarray, fs: float) -> tuple[float, list[float]]:
    """Mean over channels of the total-variation distance between normalised average spectra; and per channel."""
    _, pa = average_psd(a, fs)
    _, pb = average_psd(b, fs)
    pa = pa / np.maximum(pa.sum(axis=1, keepdims=True), 1e-300)
    pb = pb / np.maximum(pb.sum(axis=1, keepdims=True), 1e-300)
    per = (0.5 * np.abs(pa - pb).sum(axis=1)).tolist()
    return float(np.mean(per)), per


def minirocket(n_kernels: int, seed: int):
    """aeon's MiniRocket transform (numba; compiled once, then cached)."""
    from aeon.transformations.collection.convolution_based import MiniRocket

    return MiniRocket(n_kernels=n_kernels, random_state=seed)


def minirocket_classifier(x_train: np.ndarray, y_train: np.ndarray, n_kernels: int, seed: int):
    """MiniRocket features + RidgeClassifierCV with standardised features (the authors' recipe), fitted."""
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(MiniRocket(n_kernels=n_kernels, random_state=seed), StandardScaler(with_mean=True),
                          RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    return model.fit(np.asarray(x_train, np.float32), y_train)


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(np.asarray(x, np.float32)) == y).mean())


def _two_folds(n: int, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Fold 0/1 per item: the distinct groups (each item its own when ``groups`` is None) in random
    order, the first half of them in fold 0."""
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"groups: expected {n} entries, got {len(groups)}")
    names, index = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ValueError("discriminative score needs >= 2 groups per set")
    first = rng.permutation(len(names))[: len(names) // 2]
    return np.where(np.isin(index, first), 0, 1)


def _balanced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` cut to the same length by a random draw from the longer."""
    n = min(len(a), len(b))
    return a[np.sort(rng.permutation(len(a))[:n])], b[np.sort(rng.permutation(len(b))[:n])]


def discriminative_score(real: np.ndarray, fake: np.ndarray, n_kernels: int = 1000, seed: int = 0,
                         real_groups: np.ndarray | None = None,
                         fake_groups: np.ndarray | None = None) -> dict[str, float]:
    """Two-fold held-out accuracy of a real-vs-generated classifier and |accuracy − 0.5|. Each set is split
    in two folds by its groups (``*_groups``: one label per window, e.g. its recording; None: every window
    its own), the classifier trains on one fold of each and is tested on the other, then the other way
    round; every fit and test draws equal numbers of real and generated windows. ``n_per_set``: windows
    per set tested over both folds."""
    rng = np.random.default_rng(seed)
    if min(len(real), len(fake)) < 4:
        raise ValueError(f"discriminative score needs >= 4 windows per set, got {min(len(real), len(fake))}")
    fold_r, fold_f = _two_folds(len(real), real_groups, rng), _two_folds(len(fake), fake_groups, rng)
    correct, tested = 0.0, 0
    for k in (0, 1):
        r_fit, f_fit = _balanced(np.flatnonzero(fold_r == k), np.flatnonzero(fold_f == k), rng)
        r_test, f_test = _balanced(np.flatnonzero(fold_r != k), np.flatnonzero(fold_f != k), rng)
        model = minirocket_classifier(np.concatenate([real[r_fit], fake[f_fit]]),
                                      np.r_[np.ones(len(r_fit)), np.zeros(len(f_fit))], n_kernels, seed)
        x_test = np.concatenate([real[r_test], fake[f_test]])
        correct += accuracy(model, x_test, np.r_[np.ones(len(r_test)), np.zeros(len(f_test))]) * len(x_test)
        tested += len(r_test)
    acc = correct / (2 * tested)
    return {"accuracy": acc, "score": abs(acc - 0.5), "n_per_set": float(tested)}
