"""Video domain: Moving MNIST, 3D networks and 2D→3D inflation, the composite loss and the r-ratio rule,
scores (IS of real vs noise, temporal change), params checks."""

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.nn.init import init_normal
from pipeline.video.scorers import C3D, CLASSIFIERS, R2Plus1D, build_classifier
from pipeline.video.nets import VideoDiscriminator, VideoGenerator, inflate
from pipeline.params import parse_params, parse_section
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig
from pipeline.video import moving_mnist as mm
from pipeline.train.pixels import to_uint8, to_unit
from pipeline.video.data import ClipSet
from pipeline.video.evaluation import Scorer, fit, temporal_change, uniform_noise
from pipeline.video.gan import VideoGanFamily, interpolate, train
from pipeline.video.params import VideoClassifyParams, VideoTrainGanParams


@pytest.fixture(scope="module")
def digits14():
    return mm.mnist_digits(14)


def test_trajectories_bounce_and_stay_inside():
    rng = np.random.default_rng(0)
    for _ in range(200):
        limit = float(rng.integers(4, 50))
        vel = rng.uniform(-1, 1, 2) * rng.uniform(0.5, limit - 0.01)
        pos = mm.trajectory(rng.uniform(0, limit, 2), vel, 40, limit)
        assert pos.min() >= 0 and pos.max() <= limit
        step = np.abs(np.diff(pos, axis=0))
        assert (step <= np.abs(vel) + 1e-9).all()  # a bounce never moves a digit further than its speed
    # a fast digit does bounce: its direction flips
    pos = mm.trajectory(np.array([1.0, 1.0]), np.array([3.0, -2.0]), 30, 10.0)
    assert (np.diff(np.sign(np.diff(pos[:, 0]))) != 0).any() and (np.diff(np.sign(np.diff(pos[:, 1]))) != 0).any()


def test_moving_mnist_keeps_every_digit_whole_inside_the_frame(digits14):
    c = mm.moving_mnist(30, "train", 32, 12, 14, (1.0, 6.0), seed=3, digits=digits14)
    imgs, labels = digits14
    assert c.x.shape == (30, 1, 12, 32, 32) and c.x.dtype == np.uint8
    # nothing is cut off at the border: every frame holds the digit's full ink
    mass = c.x.reshape(30, 12, -1).astype(np.int64).sum(-1)
    assert (mass == mass[:, :1]).all() and (mass > 0).all()
    assert c.positions.min() >= 0 and c.positions.max() <= 32 - 14
    moving = np.abs(np.diff(c.positions, axis=1)).sum(axis=(1, 2))
    assert (moving > 0).all()
    assert np.bincount(c.motion, minlength=3).tolist() == [10, 10, 10]
    again = mm.moving_mnist(30, "train", 32, 12, 14, (1.0, 6.0), seed=3, digits=digits14)
    other = mm.moving_mnist(30, "train", 32, 12, 14, (1.0, 6.0), seed=4, digits=digits14)
    assert np.array_equal(again.x, c.x) and not np.array_equal(other.x, c.x)


def test_motion_labels_survive_bounces_and_digit_pools_are_disjoint():
    rng = np.random.default_rng(0)
    for motion in range(3):
        for _ in range(50):
            v = mm.motion_velocity(rng, motion, (1.0, 3.0))
            angle = np.degrees(np.arctan2(abs(v[0]), abs(v[1])))  # to the horizontal, unchanged by reflections
            assert abs(angle - 45 * motion) <= mm.ANGLE_JITTER_DEG + 1e-9
    labels = np.repeat(np.arange(10), 20)
    pools = mm.digit_pools(labels)
    assert not set(pools["train"]) & set(pools["test"]) and len(pools["train"]) + len(pools["test"]) == 200
    assert set(labels[pools["test"]]) == set(range(10))


def test_generator_discriminator_and_classifier_shapes():
    g = VideoGenerator(3, 1, 64, 16, latent_dim=16, ngf=4)
    x = g(torch.randn(2, 16))
    assert x.shape == (2, 1, 16, 64, 64) and x.abs().max() <= 1
    d = VideoDiscriminator(3, 1, 64, 16, ndf=4)
    assert d(x).shape == (2,) and d.features(x).shape == (2, 32)
    assert VideoDiscriminator(3, 3, 32, 8, ndf=4, norm="none")(torch.zeros(2, 3, 8, 32, 32)).shape == (2,)
    assert VideoGenerator(2, 3, 32, 8, 16, 4)(torch.randn(2, 16)).shape == (2, 3, 32, 32)
    for name in CLASSIFIERS:
        net = build_classifier(name, 1, 5, width=4)
        assert net(x).shape == (2, 5) and net.features(x).shape[0] == 2
    assert C3D(1, 3, 4)(torch.zeros(2, 1, 3, 16, 16)).shape == (2, 3)  # short clips survive the pools
    assert type(build_classifier("r2plus1d", 1, 3, 4)) is R2Plus1D
    with pytest.raises(PipelineError, match=r"unknown video classifier 'i3d' \(known: c3d, r2plus1d\)"):
        build_classifier("i3d", 1, 3, 4)
    with pytest.raises(ValueError, match="power of two"):
        VideoGenerator(3, 1, 48, 8)


def _trained_twins(size=32, frames=8, norm="batch"):
    torch.manual_seed(0)
    g2, g3 = VideoGenerator(2, 1, size, frames, 16, 4), VideoGenerator(3, 1, size, frames, 16, 4)
    d2, d3 = VideoDiscriminator(2, 1, size, frames, 4, norm), VideoDiscriminator(3, 1, size, frames, 4, norm)
    for net in (g2, d2):
        init_normal(net)
        for m in net.modules():  # pretend training moved the norm statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.normal_(1.0, 0.3)
                m.bias.data.normal_(0.0, 0.3)
    return g2, inflate(g2, g3), d2, inflate(d2, d3)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_inflated_nets_match_the_2d_nets_frame_by_frame_on_static_video(mode):
    g2, g3, d2, d3 = _trained_twins()
    for net in (g2, g3, d2, d3):
        getattr(net, mode)()
    with torch.no_grad():
        z = torch.randn(3, 16)
        frame, clip = g2(z), g3(z)
        assert clip.shape == (3, 1, 8, 32, 32)
        assert torch.allclose(clip, frame.unsqueeze(2).expand_as(clip), atol=1e-5)  # every frame = the 2D frame
        static = frame.unsqueeze(2).expand(-1, -1, 8, -1, -1).contiguous()
        h3, h2 = d3.trunk(static), d2.trunk(frame)
        assert torch.allclose(h3, h2.unsqueeze(2).expand_as(h3), atol=1e-4)  # per frame, every layer's output
        assert torch.allclose(d3(static), d2(frame), atol=1e-4)
        moving = torch.rand(3, 1, 8, 32, 32) * 2 - 1  # not static: the twins disagree
        assert not torch.allclose(d3.trunk(moving)[:, :, 0], d2.trunk(moving[:, :, 0]), atol=1e-3)


def test_inflation_copies_each_kernel_to_every_temporal_slice_divided_by_depth():
    g2, g3, d2, d3 = _trained_twins()
    w2, w3 = d2.trunk[0].conv.weight, d3.trunk[0].conv.weight
    assert w3.shape == (*w2.shape[:2], 3, *w2.shape[2:])
    for t in range(3):
        assert torch.equal(w3[:, :, t], w2 / 3)
    with pytest.raises(ValueError, match="not twins"):
        inflate(VideoDiscriminator(2, 1, 32, 8, 4), VideoDiscriminator(3, 1, 64, 8, 4))


class _Fixed(torch.nn.Module):
    """A 'generator' that returns a given clip batch (plus a learnable offset) whatever z is."""

    def __init__(self, clips):
        super().__init__()
        self.clips, self.offset = clips, torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, y=None):
        return self.clips[: len(z)] + self.offset


def test_composite_generator_loss_terms():
    real = torch.rand(4, 1, 4, 16, 16) * 2 - 1
    d = VideoDiscriminator(3, 1, 16, 4, ndf=4).eval()
    same = VideoGanFamily(_Fixed(real), d, 8, lambda_adv=1.0, lambda_feat=1.0, lambda_vid=1.0)
    loss, logs, _ = same.generator_loss({"x": real, "y": torch.zeros(4, dtype=torch.long)}, 0)
    assert logs["G_feat"] == pytest.approx(0, abs=1e-10) and logs["G_pix"] == pytest.approx(0, abs=1e-7)
    assert float(loss.detach()) == pytest.approx(logs["G_adv"], abs=1e-6)
    shifted = VideoGanFamily(_Fixed(real + 0.5), d, 8, lambda_adv=2.0, lambda_feat=0.0, lambda_vid=3.0)
    loss, logs, _ = shifted.generator_loss({"x": real, "y": torch.zeros(4, dtype=torch.long)}, 0)
    assert logs["G_pix"] == pytest.approx(0.5, abs=1e-6) and "G_feat" not in logs
    assert float(loss.detach()) == pytest.approx(2 * logs["G_adv"] + 3 * 0.5, rel=1e-5)


def _family(lambda_vid=0.0):
    torch.manual_seed(0)
    g, d = VideoGenerator(3, 1, 16, 4, 8, 4), VideoDiscriminator(3, 1, 16, 4, 4)
    return VideoGanFamily(g, d, 8, "bce", lambda_feat=1.0, lambda_vid=lambda_vid)


def _step_changes(trainer, batch):
    before = {r: [p.detach().clone() for p in trainer.family.parameters_of(r)] for r in ("G", "D")}
    logs = trainer._step(batch)
    changed = {r: any(not torch.equal(a, b) for a, b in zip(before[r], trainer.family.parameters_of(r), strict=True))
               for r in ("G", "D")}
    return logs, changed


@pytest.mark.parametrize("balance,mode", [((1e3, 1e4), "G"), ((1e-4, 1e-3), "D"), ((1e-3, 1e3), "both")])
def test_r_ratio_rule_switches_which_network_trains(balance, mode):
    fam = _family()
    trainer = AdversarialTrainer(fam, TrainConfig(lr=1e-3, batch_size=4, pool_size=0, device="cpu",
                                                  schedule="constant", balance=balance))
    batch = {"x": torch.rand(4, 1, 4, 16, 16) * 2 - 1, "y": torch.zeros(4, dtype=torch.long)}
    logs, changed = _step_changes(trainer, batch)  # the first step trains both, then r decides
    assert changed == {"G": True, "D": True} and logs["trained_G"] == logs["trained_D"] == 1.0
    assert trainer.mode == mode
    logs, changed = _step_changes(trainer, batch)
    assert changed == {"G": mode in ("G", "both"), "D": mode in ("D", "both")}
    assert (logs["trained_G"], logs["trained_D"]) == (float(mode != "D"), float(mode != "G"))


def test_r_ratio_uses_the_adversarial_term_not_the_composite_loss():
    # a huge pixel weight makes loss_G enormous; r = L_disc / L_adv must ignore it
    fam = _family(lambda_vid=1e6)
    trainer = AdversarialTrainer(fam, TrainConfig(lr=1e-3, batch_size=4, pool_size=0, device="cpu",
                                                  schedule="constant", balance=(0.1, 100.0)))
    logs = trainer._step({"x": torch.rand(4, 1, 4, 16, 16) * 2 - 1, "y": torch.zeros(4, dtype=torch.long)})
    assert logs["loss_G"] > 1e3 * logs["G_adv"]
    assert 0.1 < logs["loss_D"] / logs["G_adv"] < 100 and trainer.mode == "both"


def _tiny_gan_params(**kw):
    base = {"run": ["v"], "variants": {"v": kw}, "latent_dim": 8, "ngf": 4, "ndf": 4, "epochs": 1,
            "batch_size": 4, "samples": 4, "device": "cpu"}
    return parse_section(VideoTrainGanParams, base, "video_train_gan")


@pytest.mark.parametrize("kw", [{"init": "inflate", "lambda_feat": 1.0, "lambda_vid": 1.0, "balance": [0.5, 4.0]},
                                {"loss": "wgan-gp", "norm": "none", "d_steps": 2},
                                {"arch": "sprite", "frame_d": True, "lambda_feat": 1.0}])
def test_variants_train_through_the_harness(kw):
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (8, 1, 4, 16, 16), dtype=np.uint8)
    p = _tiny_gan_params(**kw)
    g, hist = train(p, p.variant("v"), clips)
    assert set(hist) == ({"pretrain_2d", "video"} if "init" in kw else {"video"})
    assert len(hist["video"]) == 1 and np.isfinite(hist["video"][0]["loss_G"])
    assert ("gp" in hist["video"][0]) == (kw.get("loss") == "wgan-gp")
    inter = interpolate(g, 8, pairs=2, steps=3, seed=0)
    assert inter.shape == (2, 3, 1, 4, 16, 16) and inter.dtype == np.uint8
    again = interpolate(g, 8, pairs=2, steps=3, seed=0)
    assert np.array_equal(inter, again)
    if "init" not in kw:  # seeded: a second run on CPU gives the same generator
        g2, _ = train(p, p.variant("v"), clips)
        assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), g2.state_dict().values(), strict=True))


def test_temporal_change_and_scaling_on_known_clips():
    static = np.full((2, 1, 5, 8, 8), 77, np.uint8)
    assert temporal_change(static) == 0.0
    flicker = np.zeros((2, 1, 5, 8, 8), np.uint8)
    flicker[:, :, ::2] = 255
    assert temporal_change(flicker) == pytest.approx(1.0)
    x = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(to_unit(x)), x) and to_unit(x).min() == -1 and to_unit(x).max() == 1


def test_inception_score_of_real_clips_beats_noise(digits14):
    def clips(n, split):
        c = mm.moving_mnist(n, split, 32, 8, 14, (2.0, 4.0), seed=0, digits=digits14)
        return ClipSet(c.x, c.motion)

    train_set, test_set = clips(120, "train"), clips(60, "test")
    p = parse_section(VideoClassifyParams, {"width": 8, "epochs": 10, "batch_size": 12, "lr": 0.003, "is_splits": 3,
                                            "ms_ssim_pairs": 30, "device": "cpu"}, "video_classify")
    model = fit(p, "c3d", train_set, 3, seed=0)
    acc = float((model(torch.as_tensor(to_unit(test_set.x))).argmax(1).numpy() == test_set.y).mean())
    scorer = Scorer(model, "c3d", 3, np.random.default_rng(0).normal(size=(60, 32)))
    real = scorer.score(test_set.x, 30, 0)
    noise = scorer.score(uniform_noise(60, test_set.x.shape[1:], 0), 30, 0)
    assert acc > 0.6  # chance: 1/3
    assert real["is_c3d"] > noise["is_c3d"] + 0.3 and real["is_c3d"] <= 3.0
    assert real["ms_ssim"] > noise["ms_ssim"] and real["temporal_change"] < noise["temporal_change"]


def test_video_params_are_checked():
    with pytest.raises(PipelineError, match=r"video_train_gan.variants.x.lossy: unknown key"):
        parse_params({"video_train_gan": {"run": ["x"], "variants": {"x": {"lossy": "bce"}}}})
    with pytest.raises(PipelineError, match=r"video_train_gan.variants.x.init: expected one of scratch, inflate"):
        parse_params({"video_train_gan": {"run": ["x"], "variants": {"x": {"init": "grow"}}}})
    with pytest.raises(PipelineError, match=r"video_train_gan.variants.x.norm: a WGAN-GP critic cannot use batch"):
        parse_params({"video_train_gan": {"run": ["x"], "variants": {"x": {"loss": "wgan-gp"}}}})
    with pytest.raises(PipelineError, match=r"video_train_gan.variants.x.balance: expected list of float, float"):
        parse_params({"video_train_gan": {"run": ["x"], "variants": {"x": {"balance": [4.0, 1.0]}}}})
    with pytest.raises(PipelineError, match=r"video_train_gan.run: unknown variant 'y' \(known: x\)"):
        parse_params({"video_train_gan": {"run": ["y"], "variants": {"x": {}}}})
    with pytest.raises(PipelineError, match=r"video_classify.conditioner: must differ from the scorer"):
        parse_params({"video_classify": {"classifier": "c3d", "conditioner": "c3d"}})
    with pytest.raises(PipelineError, match=r"video_prepare.digit_size: expected < size"):
        parse_params({"video_prepare": {"size": 32, "digit_size": 32}})
    with pytest.raises(PipelineError, match=r"video_prepare.size: expected int a power of two >= 16, got 48"):
        parse_params({"video_prepare": {"size": 48}})
    v = parse_params({"video_train_gan": {"run": ["x"], "lr_G": 0.01, "variants": {"x": {"balance": [0.5, 2]}}}}
                     ).video_train_gan.variant("x")
    assert v.balance == (0.5, 2.0) and v.lr_G == 0.01 and v.init == "scratch"


def test_report_warns_when_the_scorer_is_weak():
    from stages.video.classify import scorer_warning

    assert scorer_warning(0.93, 3) == ""
    text = scorer_warning(0.464, 3)
    assert "0.464" in text and "0.333" in text and "video_classify.lr" in text


def test_digit_motion_labels_need_appearance_and_motion(digits14):
    c = mm.moving_mnist(36, "train", 32, 6, 14, (1.5, 3.0), seed=0, digits=digits14, label="digit_motion",
                        digit_classes=(0, 1, 4), motions=(0, 2))
    y = mm.class_index(c, "digit_motion", (0, 1, 4), (0, 2))
    assert np.bincount(y, minlength=6).tolist() == [6] * 6  # balanced classes
    assert set(c.digit.tolist()) == {0, 1, 4} and set(c.motion.tolist()) == {0, 2}
    assert (y == np.array([[0, 1, 4].index(d) for d in c.digit]) * 2 + (c.motion == 2)).all()
    assert mm.class_names("digit_motion", (0, 1, 4), (0, 2))[:2] == ["0_horizontal", "0_vertical"]
    moves = np.abs(np.diff(c.positions, axis=1)).sum(1)  # (n, 2): rows moved, cols moved
    assert (moves[c.motion == 0, 1] > moves[c.motion == 0, 0]).all()
    assert (moves[c.motion == 2, 0] > moves[c.motion == 2, 1]).all()
    # the old default (every digit, three axes, motion label) is unchanged by the new options
    a = mm.moving_mnist(12, "test", 32, 4, 14, (1.5, 3.0), seed=1, digits=digits14)
    b = mm.moving_mnist(12, "test", 32, 4, 14, (1.5, 3.0), seed=1, digits=digits14, label="motion")
    assert np.array_equal(a.x, b.x)


def test_collapse_alarm_flags_a_one_clip_generator(digits14):
    from pipeline.video.evaluation import evaluate

    c = mm.moving_mnist(48, "train", 16, 4, 8, (1.0, 3.0), seed=0, digits=mm.mnist_digits(8))
    t = mm.moving_mnist(24, "test", 16, 4, 8, (1.0, 3.0), seed=0, digits=mm.mnist_digits(8))
    train_set, test_set = ClipSet(c.x, c.motion), ClipSet(t.x, t.motion)
    p = parse_section(VideoClassifyParams, {"width": 4, "epochs": 1, "is_splits": 2, "ms_ssim_pairs": 20,
                                            "device": "cpu"}, "video_classify")
    one = np.repeat(t.x[:1], 24, axis=0)  # a generator that always draws the same clip
    samples = {"one-0": one, "one-1": one, "real_like-0": t.x[::-1].copy()}
    runs = {"one-0": ("one", 0), "one-1": ("one", 1), "real_like-0": ("real_like", 0)}
    m, _ = evaluate(p, train_set, test_set, 3, samples, None, runs)
    assert m["collapsed"] == {"one": True, "real_like": False}
    assert m["variants"]["one"]["seeds"] == [0, 1] and m["variants"]["one"]["ms_ssim"]["n"] == 2
    from pipeline.video.evaluation import table
    assert "**`one` (collapsed)**" in table(m, "c3d") and "| `real_like` |" in table(m, "c3d")


def test_conditional_generator_fits_a_tiny_set():
    """Two classes of 4 clips each (16 px, 4 frames): after a short training the conditional GAN's clips of
    each class are nearer the real clips of that class than an untrained generator's (a broken G fails)."""
    torch.set_num_threads(1)
    clips = np.zeros((8, 1, 4, 16, 16), np.uint8)
    for i in range(8):  # class 0: a bar moving right; class 1: a bar moving down
        for t in range(4):
            if i < 4:
                clips[i, 0, t, 4:12, 2 + 3 * t:5 + 3 * t] = 255
            else:
                clips[i, 0, t, 2 + 3 * t:5 + 3 * t, 4:12] = 255
    labels = np.repeat([0, 1], 4)
    p = parse_section(VideoTrainGanParams, {"run": ["v"], "variants": {"v": {}}, "conditional": True,
                                            "latent_dim": 8, "ngf": 8, "ndf": 8, "epochs": 150, "batch_size": 8,
                                            "lr_G": 0.002, "lr_D": 0.002, "samples": 8, "device": "cpu"},
                      "video_train_gan")
    from pipeline.video.gan import build, generate

    def error(g):
        x = generate(g, 8, 8, seed=5, n_classes=2).astype(np.float32) / 255
        ref = clips.astype(np.float32) / 255
        return float(np.mean([np.abs(x[i] - ref[labels == i % 2]).mean(axis=(1, 2, 3, 4)).min() for i in range(8)]))

    torch.manual_seed(0)
    untrained = build(p.variant("v"), 3, 1, 16, 4, 2)[0].eval()
    g, hist = train(p, p.variant("v"), clips, labels, 2, seed=0)
    assert len(hist["video"]) == 150
    assert error(g) < 0.6 * error(untrained), (error(g), error(untrained))  # measured: 0.24 vs 0.50


def test_sprite_renderer_places_the_sprite_and_bounces():
    from pipeline.video.nets import SpriteGenerator, reflect
    g = SpriteGenerator(1, 32, 2, latent_dim=8, ngf=4)
    sprite = torch.zeros(1, 1, 16, 16)
    sprite[0, 0, 0, 0] = 1
    out = g.render(sprite, torch.tensor([[[3.0, 5.0], [4.0, 7.0]]]))
    assert out.shape == (1, 1, 2, 32, 32)
    assert (out[0, 0, 0] == 1).nonzero().tolist() == [[3, 5]] and (out[0, 0, 1] > 0.99).nonzero().tolist() == [[4, 7]]
    # reflect folds a straight line into [0, limit] like mm.trajectory's bounces
    start, vel = np.array([1.0, 9.0]), np.array([3.0, 2.5])
    want = mm.trajectory(start, vel, 12, 10.0)
    t = torch.arange(12.0)[:, None]
    got = reflect(torch.tensor(start) + t * torch.tensor(vel), 10.0).numpy()
    assert np.allclose(got, want)
    clip = g(torch.randn(3, 8))
    assert clip.shape == (3, 1, 2, 32, 32) and clip.min() >= -1 and clip.max() <= 1


def test_params_reject_a_sprite_generator_with_inflation():
    with pytest.raises(PipelineError, match="inflate needs arch conv3d"):
        _tiny_gan_params(arch="sprite", init="inflate").variant("v")
    with pytest.raises(PipelineError, match="arch"):
        _tiny_gan_params(arch="lstm").variant("v")
