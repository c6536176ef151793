"""Distribution checks for generated time series, and the independent MiniRocket classifier (aeon).

* ``psd_distance``: per channel, the Welch power spectra of all windows are averaged and normalised to
  a distribution over frequency; the distance is the total variation ½Σ|p − q| (0 = same spectrum,
  1 = disjoint), averaged over channels.
* ``discriminative_score``: a post-hoc classifier (MiniRocket features + ridge, both from aeon/sklearn)
  learns real vs generated on half of each set and is scored on the other half; held-out accuracy 0.5
  means it cannot tell them apart. The score reported is |accuracy − 0.5|.
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


def discriminative_score(real: np.ndarray, fake: np.ndarray, n_kernels: int = 1000,
                         seed: int = 0) -> dict[str, float]:
    """Held-out accuracy of a real-vs-generated classifier and |accuracy − 0.5|; equal set sizes are drawn."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake))
    if n < 4:
        raise ValueError(f"discriminative score needs >= 4 windows per set, got {n}")
    r = real[rng.permutation(len(real))[:n]]
    f = fake[rng.permutation(len(fake))[:n]]
    half = n // 2
    x_train = np.concatenate([r[:half], f[:half]])
    y_train = np.r_[np.ones(half), np.zeros(half)]
    x_test = np.concatenate([r[half:], f[half:]])
    y_test = np.r_[np.ones(n - half), np.zeros(n - half)]
    model = minirocket_classifier(x_train, y_train, n_kernels, seed)
    acc = accuracy(model, x_test, y_test)
    return {"accuracy": acc, "score": abs(acc - 0.5), "n_per_set": float(n)}
