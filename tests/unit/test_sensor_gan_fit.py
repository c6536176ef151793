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


def _two_class_batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    data = _sines(n, np.random.default_rng(2))
    return torch.as_tensor(data.x, dtype=torch.float32), torch.as_tensor(data.y)


def test_spectrum_matching_is_zero_on_real_windows_and_pulls_noise_to_each_class_band():
    from pipeline.train.gan import LatentGanFamily

    x, y = _two_class_batch()
    fam = LatentGanFamily(torch.nn.Identity(), torch.nn.Identity(), 4, "hinge", conditional=True,
                          spectrum_matching=1.0)
    batch = {"x": x, "y": y}
    assert float(fam.matching_terms(batch, x, {})) == pytest.approx(0.0, abs=1e-6)
    # per class: the same windows under swapped labels do not match
    i0, i1 = torch.nonzero(y == 0).squeeze(1), torch.nonzero(y == 1).squeeze(1)
    swapped = x.clone()
    swapped[i0], swapped[i1] = x[i1], x[i0]
    assert float(fam.matching_terms(batch, swapped, {})) > 0.5
    fake = torch.nn.Parameter(0.1 * torch.randn_like(x))
    opt = torch.optim.Adam([fake], lr=0.02)
    start = float(fam.matching_terms(batch, fake, {}).detach())
    logs: dict[str, float] = {}
    for _ in range(300):
        opt.zero_grad()
        fam.matching_terms(batch, fake, logs).backward()
        opt.step()
    assert logs["G_spec"] < 0.2 * start
    got = _cycles(fake.detach().numpy())
    assert (got == np.where(y.numpy() == 0, 2, 5)).mean() >= 0.9, got


def test_feature_matching_compares_mean_d_features_per_class():
    from pipeline.train.gan import LatentGanFamily

    torch.manual_seed(0)
    x, y = _two_class_batch()
    d = Discriminator1D(3, L, ndf=8, n_classes=2, norm="none", spectral=True)
    fam = LatentGanFamily(torch.nn.Identity(), d, 4, "hinge", conditional=True, feature_matching=1.0)
    batch = {"x": x, "y": y}
    logs: dict[str, float] = {}
    assert float(fam.matching_terms(batch, x[torch.randperm(len(x))].clone(), logs).detach()) > 0  # classes mixed up
    same = x[torch.cat([torch.flip(torch.nonzero(y == c).squeeze(1), [0]) for c in (0, 1)])]
    order = torch.cat([torch.nonzero(y == c).squeeze(1) for c in (0, 1)])
    # the same windows of each class in another order: the class means agree
    assert float(fam.matching_terms({"x": x[order], "y": y[order]}, same, logs).detach()) == pytest.approx(0.0, abs=1e-6)
    fake = torch.nn.Parameter(torch.zeros_like(x))
    assert float(fam.matching_terms(batch, fake, {}).detach()) > 0 and "G_fm" in logs
    fam.matching_terms(batch, fake, {}).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0


def test_standardised_view_shows_a_quiet_window_at_the_scale_of_a_loud_one():
    from pipeline.sensor.nets import StandardisedView

    x = torch.as_tensor(_sines(4, np.random.default_rng(3)).x, dtype=torch.float32)
    quiet, loud = StandardisedView()(0.05 * x + 0.3), StandardisedView()(x)
    assert quiet.shape == (4, 6, L) and torch.equal(quiet[:, :3], 0.05 * x + 0.3)
    # the same shape (cosine ~1) at a comparable scale: eps = 0.01 against a std of 0.02-0.07
    assert float(torch.nn.functional.cosine_similarity(quiet[:, 3:], loud[:, 3:], dim=-1).min()) > 0.999
    assert float(quiet[:, 3:].std(dim=-1).min()) > 0.6 and float((0.05 * x).std()) < 0.1
    d = Discriminator1D(3, L, ndf=8, n_classes=2, norm="none", spectral=True, standardised=True)
    assert d(x, torch.arange(4) % 2).shape == (4,)
