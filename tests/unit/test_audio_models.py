"""Audio domain, model side: networks, spectral norm, the projection discriminator, the GAN family through the
shared harness, the evaluator's scores, the volume experiment, the tables and the params."""

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.audio.data import PairSet, load_mnist
from pipeline.audio.evaluation import (
    FD_NAME,
    Generated,
    _scores,
    collapsed,
    evaluate,
    feature_groups,
    table2,
    table4,
    train_digit_classifier,
    volume_experiment,
)
from pipeline.audio.features import Standardizer
from pipeline.audio.gan import AudioGanFamily, PairSampler, build, generate, to_uint8, to_unit, train
from pipeline.audio.nets import AudioClassifier, Discriminator, Generator, ProjectionHead
from pipeline.audio.params import AudioEvaluateParams, AudioFeaturesParams, AudioTrainGanParams, GanVariant
from pipeline.errors import PipelineError
from pipeline.metrics.generative import inception_score
from pipeline.metrics.stats import over_seeds
from pipeline.params import parse_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These networks are tiny: on a shared 2-core box, a second intra-op thread slows them down several-fold."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def test_shapes_and_ranges():
    for size in (32, 64):
        g = Generator(1, size, latent_dim=8, cond_in=5, cond_dim=4, ngf=4)
        x = g(torch.randn(3, 8), torch.randn(3, 5))
        assert x.shape == (3, 1, size, size) and x.abs().max() <= 1
        for cond in ("concat", "projection"):
            d = Discriminator(1, size, 5, 4, ndf=4, conditioning=cond, n_classes=10)
            d.aux_trace = []
            assert d(x, torch.randn(3, 5)).shape == (3,) and d.aux_trace[0].shape == (3, 10)
    assert AudioClassifier(40, 10, 16)(torch.randn(2, 40, 101)).shape == (2, 10)
    assert AudioClassifier(40, 10, 16).features(torch.randn(2, 40, 77)).shape == (2, 16)
    with pytest.raises(ValueError, match="power of two"):
        Generator(1, 48, 8, 5)
    with pytest.raises(ValueError, match=r"unknown conditioning 'film' \(known: concat, projection\)"):
        Discriminator(1, 32, 5, conditioning="film")


def _sigma(m: nn.Module) -> float:
    return float(torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2))


def test_spectral_norm_keeps_every_layer_at_unit_largest_singular_value():
    torch.manual_seed(0)
    d = Discriminator(1, 32, 5, ndf=8, conditioning="projection", norm=False, sn=True).train()
    x, c = torch.randn(4, 1, 32, 32), torch.randn(4, 5)
    for _ in range(30):  # one power iteration per training-mode forward
        d(x, c)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 5  # 3 convolutions, ψ and the projection V
    for m in layers:
        assert _sigma(m) == pytest.approx(1.0, abs=0.02), m  # of the (out, in·k·k) matrix, as Miyato et al.
    plain = Discriminator(1, 32, 5, ndf=8, conditioning="projection", norm=False, sn=False)
    assert any(abs(_sigma(m) - 1) > 0.2 for m in plain.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_projection_logit_is_affine_in_the_condition():
    torch.manual_seed(0)
    head = ProjectionHead(width=6, cond_in=3, cond_dim=4, norm=False)
    h = torch.randn(5, 6, 4, 4)
    c1, c2 = torch.randn(5, 3), torch.randn(5, 3)
    phi = h.sum(dim=(2, 3))
    diff = head(h, c1) - head(h, c2)
    torch.testing.assert_close(diff, ((c1 - c2) @ head.embed.weight.T * phi).sum(1))  # <V(c1 - c2), φ(x)>
    with torch.no_grad():
        head.embed.weight.zero_()
    torch.testing.assert_close(head(h, c1), head(h, c2))  # no projection: the condition does not matter


def test_projection_discriminator_learns_which_condition_fits_an_image():
    """Images bright on the left go with condition e0, bright on the right with e1; D should score matched
    pairs above swapped ones on new images after a short hinge training."""
    torch.manual_seed(0)

    def images(n):
        y = torch.randint(0, 2, (n,))
        x = torch.full((n, 1, 8, 8), -1.0) + 0.1 * torch.randn(n, 1, 8, 8)
        for i, k in enumerate(y):
            x[i, :, :, 4 * k:4 * k + 4] += 1.5
        return x, torch.eye(2)[y], torch.eye(2)[1 - y]

    d = Discriminator(1, 8, 2, 4, ndf=8, conditioning="projection", norm=False, sn=True)
    opt = torch.optim.Adam(d.parameters(), 2e-3, betas=(0.5, 0.999))
    for _ in range(150):
        x, right, wrong = images(32)
        loss = torch.relu(1 - d(x, right)).mean() + torch.relu(1 + d(x, wrong)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    x, right, wrong = images(200)
    with torch.no_grad():
        assert (d(x, right) > d(x, wrong)).float().mean() > 0.95


def _pairs(n=40, size=32, classes=3, seed=0) -> PairSet:
    rng = np.random.default_rng(seed)
    label = np.arange(n) % classes
    images = np.zeros((n, 1, size, size), np.uint8)
    for i, c in enumerate(label):  # a bar whose position is the class
        images[i, 0, :, 8 * c + 2: 8 * c + 8] = 255
    images = np.clip(images + rng.integers(0, 30, images.shape), 0, 255).astype(np.uint8)
    return PairSet(np.zeros((n, 10), np.float32), label, np.array(["v"] * n), np.arange(n), images, label.copy())


def test_class_pairing_sampler_pairs_images_with_clips_of_their_class():
    ps = _pairs(30)
    cond = torch.as_tensor(np.eye(3)[ps.label], dtype=torch.float32)
    s = PairSampler(to_unit(ps.images, 32), ps.image_index, ps.image_label, cond, torch.as_tensor(ps.label), 8, 0, True)
    assert s.steps == 3
    batches = list(s(0))
    assert batches[0]["x"].shape == (8, 1, 32, 32) and len(batches) == 3
    for b in batches:
        bar = b["x"][:, 0, 16].argmax(dim=1) // 8  # the class drawn in the image
        assert (bar == b["label"]).all() and (b["y"].argmax(1) == b["label"]).all()
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(batches, list(s(0)), strict=True))  # (seed, epoch)
    fixed = PairSampler(to_unit(ps.images, 32), ps.image_index, ps.image_label, cond, torch.as_tensor(ps.label), 8, 0,
                        False, steps_per_epoch=2)
    assert fixed.steps == 2 and len(list(fixed(1))) == 2


@pytest.mark.parametrize("cfg", [
    {},
    {"loss": "hinge", "spectral_norm": True, "conditioning": "projection", "aux_weight": 1.0, "g_steps": 2},
    {"loss": "wgan-gp", "mismatch_weight": 0.0, "image_size": 64},
])
def test_gan_variants_train_through_the_shared_harness(cfg):
    ps = _pairs(24)
    p = AudioTrainGanParams(run=["x"], variants={"x": cfg}, epochs=2, steps_per_epoch=2, batch_size=8, ngf=4, ndf=4,
                            latent_dim=8, cond_dim=4, mismatch_weight=1.0, device="cpu")
    v = p.variant("x")
    cond = np.eye(3, dtype=np.float32)[ps.label]
    g0, _ = build(v, 1, 3, 3)
    g, hist = train(p, v, ps, cond, 3, by_class=True)
    assert len(hist) == 2 and all(np.isfinite(h["loss_G"]) and np.isfinite(h["loss_D"]) for h in hist)
    assert any(not torch.equal(a, b) for a, b in zip(g0.state_dict().values(), g.state_dict().values(), strict=True))
    assert ("G_aux" in hist[0]) == (v.aux_weight > 0) and ("gp" in hist[0]) == (v.loss == "wgan-gp")
    assert ("D_mismatch" in hist[0]) == (v.mismatch_weight > 0)
    out = generate(g, v, cond[:5], 2, seed=1, size=32)
    assert out.shape == (10, 1, 32, 32) and out.dtype == np.uint8
    assert np.array_equal(out, generate(g, v, cond[:5], 2, seed=1, size=32))


def test_mismatch_term_scores_only_pairs_of_different_classes():
    class Constant(nn.Module):
        def forward(self, x, c):
            return c[:, 0] * 0 + x.flatten(1).mean(1) * 0 + 2.0  # D says "real" (+2) to everything

    g = Generator(1, 32, 4, 3, 4, 4)
    fam = AudioGanFamily(g, Constant(), 4, "hinge", 10.0, 0.0, mismatch_weight=1.0)
    batch = {"x": torch.zeros(4, 1, 32, 32), "y": torch.eye(3)[[0, 0, 1, 2]], "label": torch.tensor([0, 0, 1, 2])}
    logs: dict = {}
    # rolled labels: [2, 0, 0, 1] → 3 of 4 pairs differ; each costs relu(1 + 2) = 3
    assert float(fam._mismatch(batch, logs)) == pytest.approx(3.0) and logs["D_mismatch"] == pytest.approx(3.0)


# ---------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def digits():
    x, y = load_mnist()
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    tr, te = order[:1500], order[4000:4600]
    clf = train_digit_classifier(AudioEvaluateParams(epochs=3, batch_size=32, device="cpu"), x[tr], y[tr], 10)
    te_sorted = te[np.argsort(y[te], kind="stable")]  # sorted by class, as the stage's pools are
    return clf, x[tr], y[tr], x[te_sorted], y[te_sorted]


def test_inception_score_bounds():
    labels = np.tile(np.arange(10), 50)  # every fold of 50 holds each class 5 times
    assert inception_score(np.eye(10)[labels], 10)[0] == pytest.approx(10.0)  # the upper bound: K classes
    assert inception_score(np.full((500, 10), 0.1), 10)[0] == pytest.approx(1.0)


def test_real_images_score_near_the_upper_bound_and_constant_images_score_one(digits):
    clf, tr_x, _, te_x, te_y = digits
    p = AudioEvaluateParams(kid_subsets=5, kid_subset_size=100)
    _, feats = _probs_feats_for(clf, te_x)
    real = _scores(p, clf, te_x, te_y, feats)
    assert real["agreement"] > 0.85  # classifier accuracy on held-out real digits
    assert real["is_mean"] > 6.0  # far above 1 although the set is sorted by class (folds are shuffled)
    assert real[FD_NAME] < 1e-6 and real["images"] == len(te_x)  # the same set against itself
    const = np.repeat(te_x[:1], 200, axis=0)
    c = _scores(p, clf, const, np.full(200, te_y[0]), feats)
    assert c["is_mean"] == pytest.approx(1.0, abs=1e-6) and c["ms_ssim_within_class"] == pytest.approx(1.0, abs=1e-4)
    assert c[FD_NAME] > 10 * max(real[FD_NAME], 1e-3)


def _probs_feats_for(clf, x):
    from pipeline.audio.evaluation import _probs_feats

    return _probs_feats(clf, x)


def test_evaluate_reports_real_reference_and_variants(digits):
    clf, tr_x, _, te_x, te_y = digits
    p = AudioEvaluateParams(kid_subsets=5, kid_subset_size=100)
    gen = {"copy": Generated(te_x, te_y), "wrong_class": Generated(te_x, (te_y + 1) % 10),
           "half": Generated(te_x[::2], te_y[::2])}
    m = evaluate(p, clf, tr_x, te_x, te_y, gen)
    assert set(m["variants"]) == {"copy", "wrong_class", "half"}
    # a generator that reproduces the real test images reaches row (a), the upper bound, exactly
    assert m["variants"]["copy"]["is_mean"] == pytest.approx(m["real"]["is_mean"])
    assert m["variants"]["copy"]["agreement"] == m["real"]["agreement"] > 0.85
    assert m["variants"]["copy"][FD_NAME] < 1e-6 < m["variants"]["half"][FD_NAME]
    assert m["variants"]["wrong_class"]["agreement"] < 0.1  # IS is blind to the class, agreement is not
    assert m["variants"]["wrong_class"]["is_mean"] == pytest.approx(m["real"]["is_mean"])
    assert m["real"][FD_NAME] > 0 and "fid" not in str(m)


def test_volume_experiment_changes_outputs_with_gain_only(digits):
    clf = digits[0]
    fp = AudioFeaturesParams()
    torch.manual_seed(0)
    v = GanVariant(feature="fbank", ngf=4, latent_dim=8, cond_dim=8)
    g = Generator(1, 32, 8, 40, 8, 4).eval()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((4, 8000))).astype(np.float32)
    base = np.stack([np.mean(np.abs(a)) for a in audio])
    zs = Standardizer(np.full(40, -40.0), np.full(40, 10.0))
    out, images = volume_experiment(g, v, clf, audio, np.arange(4), [0.5, 1.0, 2.0], 8000, fp, None, zs, 32, 0, {})
    assert set(out) == {"0.5", "1", "2"} and out["1"]["change"] == 0.0
    assert out["0.5"]["change"] > 0 and out["2"]["change"] > 0 and images[2.0].shape == (4, 1, 32, 32)
    assert base.shape == (4,)


def test_tables_and_feature_groups():
    vs = {"a": GanVariant(), "b": GanVariant(feature="fbank"), "c": GanVariant(loss="hinge")}
    assert feature_groups(vs) == [["a", "b"]]
    row = {"is_mean": 2.0, "is_std": 0.1, FD_NAME: 3.0, "agreement": 0.5, "ms_ssim_within_class": 0.3}
    runs = {f"{k}-{s}": (k, s) for k in vs for s in (0, 1)}
    per_run = {n: {**row, "is_mean": 2.0 + s, "ms_ssim_within_class": 0.9 if k == "b" else 0.3}
               for n, (k, s) in runs.items()}
    metrics = {"real": {**row, "is_mean": 9.5}, "variants": over_seeds(per_run, runs)}
    metrics["collapsed"] = collapsed(metrics)
    assert metrics["collapsed"] == {"a": False, "b": True, "c": False}  # 0.9 > real 0.3 + 0.15
    t4 = table4(metrics, vs)
    assert "| (a) | real test images (upper bound)" in t4
    assert "| (d) | `c`: hinge, concat, no matching-aware term | embedding | 0, 1 |" in t4
    assert "| 2.50 ± 6.35 |" in t4  # seeds' IS 2 and 3: mean 2.5, t(0.975, 1) * 0.707 / sqrt(2) = 6.35
    assert "**`b` (collapsed)**" in t4 and "IS (digit classifier)" in t4 and "FID" not in t4
    info = {f: {"dim": 3, "probe_accuracy": 0.5} for f in ("embedding", "fbank")}
    t2 = table2(metrics, vs, info)
    assert "| embedding (`a`)" in t2 and "| fbank (**`b` (collapsed)**)" in t2 and "`c`" not in t2


def test_to_uint8_round_trip():
    x = torch.linspace(-1, 1, 2 * 32 * 32).view(2, 1, 32, 32)
    assert np.abs(to_unit(to_uint8(x), 32).numpy() - x.numpy()).max() <= 1 / 127.5 + 1e-6
    assert to_uint8(x, 16).shape == (2, 1, 16, 16)


def test_audio_params_are_checked():
    with pytest.raises(PipelineError, match=r"audio_train_gan.variants.x.feature: expected one of spectrogram, "
                                            r"fbank, mfcc, embedding, got 'soundnet'"):
        parse_params({"audio_train_gan": {"run": ["x"], "variants": {"x": {"feature": "soundnet"}}}})
    with pytest.raises(PipelineError, match=r"audio_train_gan.variants.x.conditioning: expected one of concat, "
                                            r"projection"):
        parse_params({"audio_train_gan": {"run": ["x"], "variants": {"x": {"conditioning": "film"}}}})
    with pytest.raises(PipelineError, match=r"audio_train_gan.variants.x.image_size: expected one of 32, 64"):
        parse_params({"audio_train_gan": {"run": ["x"], "variants": {"x": {"image_size": 48}}}})
    with pytest.raises(PipelineError, match=r"audio_train_gan.run: unknown variant 'y' \(known: x\)"):
        parse_params({"audio_train_gan": {"run": ["y"], "variants": {"x": {}}}})
    with pytest.raises(PipelineError, match=r"audio_train_gan.variants.x.lr: unknown key"):
        parse_params({"audio_train_gan": {"run": ["x"], "variants": {"x": {"lr": 1.0}}}})
    with pytest.raises(PipelineError, match=r"audio_synthesize.test_voices: expected < the number of voices"):
        parse_params({"audio_synthesize": {"voices": ["m1", "m2"], "test_voices": 2}})
    with pytest.raises(PipelineError, match=r"audio_train_gan.variants.w.mismatch_weight: the matching-aware term"):
        parse_params({"audio_train_gan": {"run": ["w"], "variants": {"w": {"loss": "wgan-gp",
                                                                           "mismatch_weight": 1.0}}}})
    with pytest.raises(PipelineError, match=r"audio_synthesize.noise: expected list of str \(non-empty, of white"):
        parse_params({"audio_synthesize": {"noise": ["brown"]}})
    v = parse_params({"audio_train_gan": {"run": ["x"], "lr_G": 0.01, "variants": {"x": {"loss": "hinge"}}}}
                     ).audio_train_gan.variant("x")
    assert v.loss == "hinge" and v.lr_G == 0.01 and v.feature == "embedding"


def test_evaluate_names_a_variant_that_was_not_trained(tmp_path):
    from stages.audio.evaluate import run

    (tmp_path / "gans/cgan-0").mkdir(parents=True)
    with pytest.raises(PipelineError, match=r"gans/cgan-0/model.pt: not found \(run audio_train_gan@cgan-0\)"):
        run(AudioEvaluateParams(), ["cgan"], [0], tmp_path / "pairs", tmp_path / "features", tmp_path / "gans",
            tmp_path / "out")
    assert not (tmp_path / "out").exists()
