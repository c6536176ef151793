"""Sensor domain: windows, scalers, splits, the MotionSense loader, 1D GAN shapes, a GAN run, metrics."""

import re

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.metrics.timeseries import discriminative_score, psd_distance
from pipeline.sensor.nets import Classifier1D, Discriminator1D, Generator1D, LowPass1D, UpsampleFIR
from pipeline.params import parse_params
from pipeline.sensor.data import (
    MinMaxScaler,
    Recording,
    ZScaler,
    band_limit,
    load_basic_motions,
    load_motionsense,
    prepare,
    resample,
    windows,
)
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig
from pipeline.train.gan import LabelledSampler, LatentGanFamily, gradient_penalty


def test_windows_and_resampling():
    data = np.arange(2 * 10, dtype=float).reshape(2, 10)
    w = windows(data, 4, 3)
    assert w.shape == (3, 2, 4) and (w[1] == data[:, 3:7]).all() and (w[2] == data[:, 6:10]).all()
    assert windows(data, 11, 1).shape == (0, 2, 11)
    t = np.linspace(0, 10, 100, endpoint=False)
    up = resample(np.sin(2 * np.pi * 0.5 * t)[None], 10.0, 50.0)
    assert up.shape == (1, 500)
    t5 = np.linspace(0, 10, 500, endpoint=False)
    assert np.abs(up[0, 50:-50] - np.sin(2 * np.pi * 0.5 * t5)[50:-50]).max() < 0.02


def test_scalers_round_trip_exactly():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 5, (20, 3, 50)) * np.array([1, 10, 0.1])[None, :, None]
    mm = MinMaxScaler.fit(x)
    s = mm.transform(x)
    assert s.min() == pytest.approx(-1) and s.max() == pytest.approx(1)
    assert np.abs(s.min(axis=(0, 2)) + 1).max() < 1e-12 and np.abs(s.max(axis=(0, 2)) - 1).max() < 1e-12
    assert np.abs(mm.inverse(s) - x).max() <= 1e-6
    zs = ZScaler.fit(x)
    z = zs.transform(x)
    assert np.abs(z.mean(axis=(0, 2))).max() < 1e-9 and np.abs(z.std(axis=(0, 2)) - 1).max() < 1e-9
    assert np.abs(zs.inverse(z) - x).max() <= 1e-6
    # a constant channel does not divide by zero and still inverts
    x[:, 1] = 4.0
    assert np.abs(MinMaxScaler.fit(x).inverse(MinMaxScaler.fit(x).transform(x)) - x).max() <= 1e-6


def _motionsense(root, subjects=(1, 2, 3, 4, 5, 6), acts=("wlk_7", "jog_9", "std_6"), n=260):
    rng = np.random.default_rng(1)
    cols = ["attitude.roll", "userAcceleration.x", "userAcceleration.y", "userAcceleration.z"]
    for act in acts:
        folder = root / "A_DeviceMotion_data" / act
        folder.mkdir(parents=True)
        for s in subjects:
            rows = [",".join(cols)] + [",".join(f"{v:.5f}" for v in rng.normal(size=4)) for _ in range(n)]
            (folder / f"sub_{s}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_motionsense_layout_loads_and_splits_by_subject(tmp_path):
    recs, channels = load_motionsense(_motionsense(tmp_path))
    assert channels == ["acc_x", "acc_y", "acc_z"] and len(recs) == 18
    assert {r.label for r in recs} == {"wlk", "jog", "std"} and all(r.data.shape == (3, 260) for r in recs)
    sets, classes = prepare(recs, 50.0, 64, 32, 0.2, 0.3, seed=0)
    subjects = {s: set(ws.source.tolist()) for s, ws in sets.items()}
    assert not (subjects["train"] & subjects["test"]) and not (subjects["train"] & subjects["val"])
    assert not (subjects["val"] & subjects["test"])
    assert set().union(*subjects.values()) == {f"sub_{i}" for i in range(1, 7)}
    assert sets["train"].x.shape[1:] == (3, 64) and classes == ["jog", "std", "wlk"]


def test_motionsense_errors_name_the_file(tmp_path):
    root = _motionsense(tmp_path, subjects=(1,), acts=("wlk_1",))
    bad = root / "A_DeviceMotion_data" / "wlk_1" / "sub_1.csv"
    bad.write_text("attitude.roll,userAcceleration.x\n0.1,0.2\n")
    with pytest.raises(PipelineError, match=r"sub_1.csv: MotionSense CSV lacks column 'userAcceleration.y'"):
        load_motionsense(root)
    header = "userAcceleration.x,userAcceleration.y,userAcceleration.z\n"
    for body, message in [("1,2,3\n4,5\n", "row 3 has fewer fields than the header (no 'userAcceleration.z')"),
                          ("1,2,3\n4,5,6,7\n", "row 3 has more fields than the header"),
                          ("1,2,3\n4,nan,6\n", "row 3 column 'userAcceleration.y': Input should be a finite number"),
                          ("1,x,3\n", "row 2 column 'userAcceleration.y': Input should be a valid number")]:
        bad.write_text(header + body)
        with pytest.raises(PipelineError, match=re.escape(f"sub_1.csv: {message}")):
            load_motionsense(root)
    with pytest.raises(PipelineError, match="no <activity>_<trial> folders"):
        load_motionsense(tmp_path / "nothing")


def test_basic_motions_split_keeps_recordings_apart_and_classes_balanced():
    recs, channels = load_basic_motions()
    assert len(recs) == 80 and channels == ["acc_x", "acc_y", "acc_z"] and recs[0].data.shape == (3, 100)
    sets, classes = prepare(recs, 50.0, 200, 50, 0.1, 0.5, seed=0)
    src = {s: set(ws.source.tolist()) for s, ws in sets.items()}
    assert not (src["train"] & src["test"]) and not (src["val"] & src["test"]) and not (src["train"] & src["val"])
    counts = np.bincount(sets["test"].y, minlength=len(classes))
    assert (counts == counts[0]).all() and len(classes) == 4


def test_gan_and_classifier_shapes_and_per_axis_first_layer():
    g = Generator1D(3, 200, latent_dim=16, ngf=8, n_classes=4)
    x = g(torch.randn(5, 16), torch.arange(5) % 4)
    assert x.shape == (5, 3, 200) and x.abs().max() <= 1
    d = Discriminator1D(3, 200, ndf=8, n_classes=4)
    assert d(x, torch.arange(5) % 4).shape == (5,)
    first = d.features[0]
    assert first.groups == 3  # each axis filtered on its own first
    assert Discriminator1D(3, 200, ndf=8, norm="none")(x).shape == (5,)
    assert Classifier1D(3, 4)(x).shape == (5, 4)
    with pytest.raises(ValueError, match="divisible by 8"):
        Generator1D(3, 100)


def _band_energy(x: np.ndarray, fs: float, lo: float, hi: float = np.inf) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1]), axis=-1)) ** 2  # Hann: little leakage
    f = np.fft.rfftfreq(x.shape[-1], 1 / fs)
    return float(spec[..., (f >= lo) & (f < hi)].sum() / spec.sum())


def test_band_limit_comes_from_the_prepared_rates():
    assert band_limit({"source_rate_hz": 10.0, "rate_hz": 50.0}) == pytest.approx(0.2)
    assert band_limit({"source_rate_hz": 50.0, "rate_hz": 50.0}) == 0.0  # not upsampled: no filter
    assert band_limit({"source_rate_hz": 100.0, "rate_hz": 50.0}) == 0.0
    with pytest.raises(PipelineError, match="rerun the sensor_prepare stage"):
        band_limit({"rate_hz": 50.0})


def test_lowpass_passes_the_source_band_and_removes_what_upsampling_cannot_hold():
    fs, n = 50.0, 200
    t = np.arange(n) / fs
    lp = LowPass1D(3, band_limit({"source_rate_hz": 10.0, "rate_hz": fs}))  # cutoff 5 Hz
    slow, fast = np.sin(2 * np.pi * 2.0 * t), np.sin(2 * np.pi * 7.0 * t)
    with torch.no_grad():
        out = lp(torch.tensor(np.stack([slow, fast, slow + fast])[None], dtype=torch.float32)).numpy()[0]
    assert out.shape == (3, n)
    inner = slice(lp.half, -lp.half)  # away from the repeated ends (half the filter: 50 steps)
    assert np.abs(out[0, inner] - slow[inner]).max() < 0.01  # 2 Hz passes unchanged (linear phase, no delay)
    assert np.abs(out[1, inner]).max() < 0.01  # 7 Hz is removed
    assert np.abs(out[2, inner] - slow[inner]).max() < 0.02
    # resampled 10 Hz data holds (almost) nothing above 5 Hz; a filtered generator's windows neither
    up = resample(np.random.default_rng(0).normal(size=(3, 100)), 10.0, fs)
    assert _band_energy(up[:, 50:-50], fs, 5.5) < 1e-3
    g = Generator1D(3, n, latent_dim=16, ngf=8, n_classes=4, pad="replicate", lowpass=0.2)
    plain = Generator1D(3, n, latent_dim=16, ngf=8, n_classes=4, pad="replicate")
    plain.load_state_dict(g.state_dict())  # the filter has no weights: same G without it
    g.eval(), plain.eval()
    z, y = torch.randn(8, 16), torch.arange(8) % 4
    with torch.no_grad():
        assert isinstance(g.band[-1], LowPass1D) and torch.allclose(g(z, y), g.band[-1](plain(z, y)))
        raw = plain(z, y) + 0.3 * torch.sin(2 * torch.pi * 7.0 * torch.tensor(t, dtype=torch.float32))
        filtered = g.band[-1](raw).numpy()
    assert _band_energy(raw.numpy(), fs, 5.5) > 0.05 and _band_energy(filtered, fs, 5.5) < 1e-3


def test_band_limited_generators_are_variant_options_and_survive_saving(tmp_path):
    from pipeline.sensor.gan import build, load_generator, save_generator

    p = parse_params({"sensor_train_gan": {"run": ["lp", "up", "plain"], "latent_dim": 8, "ngf": 8,
                                           "conditional": True, "variants": {"lp": {"g_band": "lowpass"},
                                                                             "up": {"g_band": "upsample"},
                                                                             "plain": {}}}}).sensor_train_gan
    lp, up, plain = p.variant("lp"), p.variant("up"), p.variant("plain")
    assert (lp.g_band, up.g_band, plain.g_band) == ("lowpass", "upsample", "none")
    assert isinstance(build(lp, 3, 80, 4, band=0.2)[0].band[-1], LowPass1D)
    assert isinstance(build(up, 3, 80, 4, band=0.2)[0].band[-1], UpsampleFIR)
    for v in (lp, up):  # data not upsampled: no filter
        assert len(build(v, 3, 80, 4, band=0.0)[0].band) == 0
    assert len(build(plain, 3, 80, 4, band=0.2)[0].band) == 0
    with pytest.raises(ValueError, match="integer rate ratio"):
        build(up, 3, 80, 4, band=0.3)
    z, y = torch.randn(4, 8), torch.arange(4)
    for v in (lp, up):
        g = build(v, 3, 80, 4, band=0.2)[0].eval()
        save_generator(tmp_path / "g.pt", g, v, 3, 80, 4, band=0.2)
        back, saved = load_generator(tmp_path / "g.pt")
        assert saved.g_band == v.g_band and type(back.band[-1]) is type(g.band[-1])
        with torch.no_grad():
            assert back(z, y).shape == (4, 3, 80) and torch.equal(back(z, y), g(z, y))
    with pytest.raises(PipelineError, match="g_band: expected one of"):
        parse_params({"sensor_train_gan": {"run": ["x"], "variants": {"x": {"g_band": "yes"}}}})


def test_generator_noise_is_learned_and_stays_in_the_band():
    torch.manual_seed(0)
    g = Generator1D(3, 200, latent_dim=16, ngf=8, n_classes=4, pad="replicate", lowpass=0.2, noise=True).eval()
    z, y = torch.randn(8, 16), torch.arange(8) % 4
    with torch.no_grad():
        a, b = g(z, y), g(z, y)
    assert not torch.equal(a, b)  # fresh noise on every draw
    assert 0.005 < float((a - b).std()) < 0.05  # softplus(-4) ≈ 0.018 before the filter at the start
    assert _band_energy((a - b).numpy(), 50.0, 7.0) < 1e-4  # filtered like the rest of the window
    g(z, y).pow(2).sum().backward()
    assert g.noise.weight.grad is not None and g.noise.bias.grad.abs().sum() > 0  # its scale is trained
    assert Generator1D(3, 200, latent_dim=16, ngf=8).noise is None


def test_upsampling_layer_matches_resample_poly_inside_the_window():
    x = np.random.default_rng(0).normal(size=(2, 3, 40))
    with torch.no_grad():
        out = UpsampleFIR(3, 5)(torch.tensor(x, dtype=torch.float32)).numpy()
    ref = resample(x, 10.0, 50.0)
    assert out.shape == ref.shape == (2, 3, 200)
    assert np.abs(out - ref)[..., 50:-50].max() < 1e-5  # the same taps; the ends differ by their padding
    assert np.abs(out[..., ::5] - x).max() < 0.05  # a Nyquist filter: the drawn samples stay (nearly) put
    assert _band_energy(out, 50.0, 5.5) < 1e-3


def test_gradient_penalty_of_a_linear_critic():
    w = torch.tensor([0.6, 0.8, 2.0])

    class Linear(torch.nn.Module):
        def forward(self, x, y=None):
            return (x.flatten(1) * w).sum(1)

    gp = gradient_penalty(Linear(), torch.randn(4, 3), torch.randn(4, 3))
    assert float(gp) == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


@pytest.mark.parametrize("loss,opt_d,d_steps", [("bce", "sgd", 1), ("wgan-gp", "adam", 2), ("hinge", "adam", 1)])
def test_gan_smoke_run_through_the_shared_harness(loss, opt_d, d_steps):
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 64)
    x = np.stack([np.stack([np.sin(2 * np.pi * (k + 1) * t + rng.uniform(0, 6))] * 3) for k in rng.integers(0, 2, 40)])
    y = torch.as_tensor(rng.integers(0, 2, 40))
    g = Generator1D(3, 64, latent_dim=8, ngf=8, n_classes=2)
    d = Discriminator1D(3, 64, ndf=8, n_classes=2, norm="none" if loss == "wgan-gp" else "batch")
    fam = LatentGanFamily(g, d, 8, loss, conditional=True)
    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=8, pool_size=0, device="cpu", optimizer_D=opt_d,
                      schedule="constant", d_steps=d_steps)
    trainer = AdversarialTrainer(fam, cfg)
    assert isinstance(trainer.opt["D"], torch.optim.SGD if opt_d == "sgd" else torch.optim.Adam)
    before = [p.clone() for p in g.parameters()]
    hist = trainer.fit(LabelledSampler(torch.as_tensor(x, dtype=torch.float32), y, 8, 0))
    assert len(hist) == 2 and all(np.isfinite(h["loss_G"]) and np.isfinite(h["loss_D"]) for h in hist)
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters(), strict=True))
    assert ("gp" in hist[0]) == (loss == "wgan-gp")


def test_psd_distance_and_discriminative_score_on_known_inputs():
    rng = np.random.default_rng(0)
    t = np.arange(128) / 50.0

    def sines(n, f):
        return np.stack([np.stack([np.sin(2 * np.pi * f * t + p)] * 2) for p in rng.uniform(0, 6, n)]) \
            + 0.1 * rng.normal(size=(n, 2, 128))

    a, b = sines(60, 2.0), sines(60, 2.0)
    assert psd_distance(a, a, 50.0)[0] == 0.0
    assert psd_distance(a, b, 50.0)[0] < 0.1
    assert psd_distance(a, sines(60, 12.0), 50.0)[0] > 0.8
    same = discriminative_score(a, b, n_kernels=84, seed=0)  # two draws of one distribution: chance
    assert 0.3 <= same["accuracy"] <= 0.7 and same["n_per_set"] == 60
    noise = discriminative_score(a, rng.normal(size=(60, 2, 128)), n_kernels=84, seed=0)
    assert noise["accuracy"] > 0.95 and noise["score"] > 0.45


def test_discriminative_score_keeps_each_recording_in_one_fold():
    """Real windows cut from few recordings (here: near copies, as overlapping sliding windows are) against
    fresh draws of the same distribution: split over windows, a held-out real window has its siblings in
    training and the classifier tells the sets apart; split by recording it is at chance."""
    rng = np.random.default_rng(0)
    t = np.arange(128) / 50.0

    def draw(n):
        f, phase, level = rng.uniform(1, 6, (n, 1, 1)), rng.uniform(0, 6, (n, 1, 1)), rng.normal(size=(n, 2, 1))
        return level + np.sin(2 * np.pi * f * t + phase)

    real = np.repeat(draw(12), 8, axis=0) + 0.05 * rng.normal(size=(96, 2, 128))
    recording = np.repeat(np.arange(12), 8)
    fake = draw(96) + 0.05 * rng.normal(size=(96, 2, 128))
    leaky = discriminative_score(real, fake, n_kernels=84, seed=0)
    grouped = discriminative_score(real, fake, n_kernels=84, seed=0, real_groups=recording)
    assert leaky["accuracy"] > 0.62, leaky
    assert 0.3 <= grouped["accuracy"] <= 0.58 and grouped["n_per_set"] == 96, grouped
    with pytest.raises(ValueError, match="groups"):
        discriminative_score(real, fake, n_kernels=84, real_groups=recording[:10])


def test_sensor_params_are_checked():
    with pytest.raises(PipelineError, match=r"sensor_train_gan.variants.x.lossy: unknown key"):
        parse_params({"sensor_train_gan": {"run": ["x"], "variants": {"x": {"lossy": "bce"}}}})
    with pytest.raises(PipelineError, match=r"sensor_train_gan.variants.x.loss: expected one of"):
        parse_params({"sensor_train_gan": {"run": ["x"], "variants": {"x": {"loss": "l2"}}}})
    with pytest.raises(PipelineError, match=r"sensor_train_gan.run: unknown variant 'y'"):
        parse_params({"sensor_train_gan": {"run": ["y"], "variants": {"x": {}}}})
    with pytest.raises(PipelineError, match=r"sensor_prepare.stride: expected <= window"):
        parse_params({"sensor_prepare": {"window": 64, "stride": 65}})
    v = parse_params({"sensor_train_gan": {"run": ["x"], "lr_G": 0.01,
                                           "variants": {"x": {"conditional": True}}}}).sensor_train_gan.variant("x")
    assert v.conditional and v.lr_G == 0.01 and v.optimizer_D == "sgd"


def test_recording_with_too_short_windows_fails_clearly():
    rec = [Recording(np.zeros((3, 10)), "a", "s1", 50.0), Recording(np.zeros((3, 10)), "a", "s2", 50.0),
           Recording(np.zeros((3, 10)), "a", "s3", 50.0)]
    with pytest.raises(PipelineError, match="no (train|val|test) windows"):
        prepare(rec, 50.0, 64, 8, 0.2, 0.3, 0)
