"""Shapes, ranges and invariants of the CycleGAN / AGGAN / VGG building blocks (CPU, small inputs)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from pipeline.errors import PipelineError
from pipeline.detection.refiner.attention import AttentionNet, compose, threshold_foreground
from pipeline.detection.refiner.nets import PatchDiscriminator, ResnetBlock, ResnetGenerator
from pipeline.nn.init import init_normal
from pipeline.detection.refiner.vgg import VGG_LAYERS, WEIGHTS_FILE, VGGFeatures, resolve_vgg_weights


def _img(b: int = 2, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g) * 2 - 1


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------- CycleGAN generator

@pytest.mark.parametrize("skip", [False, True])
def test_generator_shape_and_range(skip):
    g = ResnetGenerator(ngf=8, n_blocks=2, skip=skip)
    x = _img(h=32, w=48) * 1.5  # beyond [-1,1] too: output must still be clamped / squashed
    y = g(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1


def test_generator_default_has_canonical_param_count():
    g = ResnetGenerator()
    assert _n_params(g) == 11_378_179
    assert sum(isinstance(m, ResnetBlock) for m in g.modules()) == 9


def test_generator_six_blocks_at_128():
    g = ResnetGenerator(ngf=8, n_blocks=6)
    assert sum(isinstance(m, ResnetBlock) for m in g.modules()) == 6
    x = _img(b=1, h=128, w=128)
    assert g(x).shape == (1, 3, 128, 128)


def test_skip_generator_with_zero_last_conv_is_identity():
    g = ResnetGenerator(ngf=8, n_blocks=1, skip=True)
    torch.nn.init.zeros_(g.last_conv.weight)
    torch.nn.init.zeros_(g.last_conv.bias)
    x = _img()
    assert torch.equal(g(x), x)
    assert torch.equal(g(x * 3), (x * 3).clamp(-1, 1))
    plain = ResnetGenerator(ngf=8, n_blocks=1, skip=False)
    torch.nn.init.zeros_(plain.last_conv.weight)
    torch.nn.init.zeros_(plain.last_conv.bias)
    assert torch.equal(plain(x), torch.zeros_like(x))


def test_generator_rejects_bad_config_and_size():
    with pytest.raises(PipelineError):
        ResnetGenerator(in_ch=1, out_ch=3, skip=True)
    with pytest.raises(ValueError):
        ResnetGenerator(ngf=4, n_blocks=0)(_img(h=30, w=32))


def test_init_weights():
    g = init_normal(ResnetGenerator(ngf=8, n_blocks=1), gain=0.02)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert all((m.bias == 0).all() for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    bn = init_normal(torch.nn.BatchNorm2d(4096))
    assert abs(bn.weight.mean().item() - 1) < 0.005 and (bn.bias == 0).all()


# ---------------------------------------------------------------- PatchGAN discriminator

@pytest.mark.parametrize(("size", "out"), [(256, 30), (128, 14)])
def test_discriminator_output_shape(size, out):
    d = PatchDiscriminator(ndf=8)
    assert d(_img(b=2, h=size, w=size)).shape == (2, 1, out, out)


def test_discriminator_default_channels_and_features():
    d = PatchDiscriminator()
    x = _img(b=1, h=64, w=64)
    feats = d.features(x)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 7]
    score, feats2 = d.forward_with_features(x)
    assert torch.equal(score, d(x))
    assert len(feats2) == 4
    assert all(torch.equal(a, b) for a, b in zip(feats, feats2))


def test_discriminator_receptive_field_is_70():
    d = init_normal(PatchDiscriminator(ndf=4))
    for block in d.blocks:  # InstanceNorm mixes the whole image; check the conv geometry only
        for i, m in enumerate(block):
            if isinstance(m, torch.nn.InstanceNorm2d):
                block[i] = torch.nn.Identity()
    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    d(x)[0, 0, 7, 7].backward()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    assert cols.max() - cols.min() + 1 == 70
    assert rows.max() - rows.min() + 1 == 70


# ---------------------------------------------------------------- AGGAN

def test_attention_net_shape_and_range():
    a = AttentionNet(ngf=8)
    x = _img(h=32, w=48)
    out = a(x)
    assert out.shape == (2, 1, 32, 48)
    assert out.min() >= 0 and out.max() <= 1


def test_compose_extremes_and_mix():
    t, s = _img(seed=1), _img(seed=2)
    ones = torch.ones(2, 1, 32, 32)
    assert torch.equal(compose(ones, t, s), t)
    assert torch.equal(compose(torch.zeros_like(ones), t, s), s)
    assert torch.allclose(compose(ones * 0.5, t, s), (t + s) / 2)


def test_threshold_foreground():
    img = _img(seed=3).requires_grad_(True)
    att = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    att[0, 0, 0, 0] = 0.1  # boundary: a <= tau is background
    att.requires_grad_(True)
    out = threshold_foreground(att, img, tau=0.1)
    keep = (att > 0.1).expand_as(img)
    assert (out[~keep] == 0).all()
    assert torch.equal(out[keep], img[keep])
    assert out[0, :, 0, 0].abs().sum() == 0
    out.sum().backward()
    assert torch.equal(img.grad, keep.float())
    assert att.grad is None


# ---------------------------------------------------------------- VGG

def test_vgg_random_layers_channels_and_frozen():
    state = torch.random.get_rng_state()
    vgg = VGGFeatures(["pool2", "relu1_2", "pool5"], "random")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not any(p.requires_grad for p in vgg.parameters())
    assert len(vgg.features) == VGG_LAYERS["pool5"] + 1
    vgg.train()
    assert not vgg.training and not vgg.features.training
    x = _img(b=1, h=64, w=64).requires_grad_(True)
    out = vgg(x)
    assert set(out) == {"pool2", "relu1_2", "pool5"}
    assert out["relu1_2"].shape == (1, 64, 64, 64)
    assert out["pool2"].shape == (1, 128, 16, 16)
    assert out["pool5"].shape == (1, 512, 2, 2)
    out["pool2"].pow(2).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg_random_is_deterministic_and_truncated():
    a, b = VGGFeatures(["relu2_2"], "random"), VGGFeatures(["relu2_2"], "random")
    assert len(a.features) == VGG_LAYERS["relu2_2"] + 1
    x = _img(b=1)
    assert torch.equal(a(x)["relu2_2"], b(x)["relu2_2"])


def test_vgg_unknown_layer_lists_known():
    with pytest.raises(PipelineError, match="relu9_9.*known: relu1_2, pool1"):
        VGGFeatures(["relu9_9"], "random")


def test_resolve_missing_weights(tmp_path, monkeypatch):
    missing = tmp_path / "nope" / "weights.pth"
    with pytest.raises(PipelineError) as exc:
        resolve_vgg_weights(str(missing), who="refine.configs.C_CPCF")
    msg = str(exc.value)
    assert "\n" not in msg and str(missing) in msg and WEIGHTS_FILE in msg
    assert msg.startswith("refine.configs.C_CPCF: ")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = tmp_path / "th" / "hub" / "checkpoints" / WEIGHTS_FILE
    with pytest.raises(PipelineError, match=str(expected)):
        resolve_vgg_weights(None)
    expected.parent.mkdir(parents=True)
    expected.write_bytes(b"x")
    assert resolve_vgg_weights(None) == expected
    with pytest.raises(PipelineError, match=str(missing)):
        VGGFeatures(["pool1"], str(missing))


def test_corrupt_weights_file(tmp_path):
    bad = tmp_path / "vgg16-397923af.pth"
    bad.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(PipelineError, match=str(bad)) as exc:
        VGGFeatures(["pool1"], str(bad))
    assert "\n" not in str(exc.value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(PipelineError, match=str(wrong)):
        VGGFeatures(["pool1"], str(wrong))


def test_valid_weights_match_torchvision(tmp_path):
    torch.manual_seed(1)
    model = torchvision.models.vgg16(weights=None).eval()
    path = tmp_path / WEIGHTS_FILE
    torch.save(model.state_dict(), path)
    del model.classifier  # only features are compared; frees ~0.4 GB early
    vgg = VGGFeatures(["relu3_3"], str(path))
    x = _img(b=1)
    norm = ((x + 1) / 2 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.features[: VGG_LAYERS["relu3_3"] + 1](norm)
    assert torch.equal(vgg(x)["relu3_3"], expected)
    assert not torch.equal(VGGFeatures(["relu3_3"], "random")(x)["relu3_3"], expected)
