"""The sensor GAN learns: on a tiny set of two classes of sines (2 or 5 cycles per window, random phase),
a conditional variant with the demo's recipe (hinge loss, spectral-norm D, mode-seeking term) draws
windows of the asked class, with a within-class spread near the data's; also the collapse alarm, the
diversity measure and the new D options."""

import numpy as np
import pytest
import torch

from pipeline.fields import parse_section
from pipeline.metrics.generative import collapse_alarm
from pipeline.sensor.data import MinMaxScaler, WindowSet, ZScaler
from pipeline.sensor.evaluation import diversity, pairwise_distance
from pipeline.sensor.gan import generate, train
from pipeline.sensor.nets import Discriminator1D, MinibatchStd
from pipeline.sensor.params import SensorTrainGanParams

L = 64


def _sines(n: int, rng: np.random.Generator) -> WindowSet:
    y = np.arange(n) % 2
    t = np.arange(L) / L
    phase = rng.uniform(0, 2 * np.pi, n)
    cycles = np.where(y == 0, 2, 5)
    x = np.sin(2 * np.pi * cycles[:, None] * t + phase[:, None])[:, None, :].repeat(3, axis=1)
    return WindowSet(x * np.array([1.0, 0.5, 2.0])[None, :, None], y, np.array(["s"] * n))


def _cycles(x: np.ndarray) -> np.ndarray:
    """Dominant frequency (cycles per window) of channel 0."""
    return np.abs(np.fft.rfft(x[:, 0], axis=-1))[:, 1:].argmax(axis=1) + 1


def _params(**variant) -> SensorTrainGanParams:
    return parse_section(SensorTrainGanParams, {
        "run": ["v"], "variants": {"v": variant}, "latent_dim": 16, "ngf": 16, "ndf": 16, "device": "cpu",
        "conditional": True, "loss": "hinge", "d_norm": "none", "optimizer_D": "adam", "lr_G": 0.001,
        "lr_D": 0.002, "diversity_sensitive": 1.0, "epochs": 60, "batch_size": 16, "seeds": [0]}, "sensor_train_gan")


def test_conditional_gan_fits_a_tiny_set_with_spread():
    torch.set_num_threads(1)
    data = _sines(64, np.random.default_rng(0))
    scaler, zs = MinMaxScaler.fit(data.x), ZScaler.fit(data.x)
    p = _params()
    g, hist = train(p, p.variant("v"), 0, data, scaler, 2)
    x, y = generate(g, p.variant("v"), 2, 50, scaler, seed=1)
    right = float((_cycles(x) == np.where(y == 0, 2, 5)).mean())
    ratio = diversity(x, y, zs) / diversity(data.x, data.y, zs)
    assert right >= 0.9, f"only {right:.2f} of the windows have their class's frequency"
    assert ratio >= 0.5, f"within-class diversity {ratio:.2f} x real: collapsed"
    assert np.isfinite([h["loss_G"] for h in hist]).all()


def test_diversity_measure_and_collapse_alarm_flag_one_window_per_class():
    data = _sines(40, np.random.default_rng(1))
    zs = ZScaler.fit(data.x)
    real = diversity(data.x, data.y, zs)
    one = np.concatenate([np.repeat(data.x[data.y == c][:1], 20, axis=0) for c in (0, 1)])
    labels = np.repeat([0, 1], 20)
    assert diversity(one, labels, zs) == 0.0
    assert collapse_alarm(diversity(one, labels, zs), real, "distance")
    assert not collapse_alarm(diversity(data.x, data.y, zs), real, "distance")
    # an RMS difference per element: two constant windows 2 apart are 2 apart
    assert pairwise_distance(np.stack([np.zeros((3, 8)), 2 * np.ones((3, 8))])) == pytest.approx(2.0)


def test_discriminator_options():
    x = torch.randn(8, 3, 64)
    d = Discriminator1D(3, 64, ndf=8, n_classes=2, norm="none", spectral=True, mbstd=True)
    assert d(x, torch.arange(8) % 2).shape == (8,)
    same = MinibatchStd()(torch.ones(8, 4, 10))
    assert same.shape == (8, 5, 10) and float(same[:, -1].abs().max()) < 1e-3  # identical windows: std 0
    assert float(MinibatchStd()(torch.randn(8, 4, 10))[:, -1].mean()) > 0.5
