"""DiffAugment (pipeline.train.augment) for images, clips and windows: shapes, gradients, what each policy does,
and the D wrapper every domain uses."""

import pytest
import torch

from pipeline.train.augment import POLICIES, AugmentedDiscriminator, diff_augment
from pipeline.anime.nets import Discriminator64


def test_each_policy_keeps_the_shape_and_passes_the_gradient():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 64, 64) * 2 - 1).requires_grad_(True)
    for name in POLICIES:
        inp = x if name in ("color", "translation", "cutout") else x.flatten(2)  # images or windows
        out = diff_augment(inp, [name])
        assert out.shape == inp.shape and not torch.equal(out, inp), name
        (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), x)
        assert grad.abs().sum() > 0, name  # G learns through the transform


def test_translation_shifts_content_and_pads_with_zeros():
    torch.manual_seed(1)
    x = torch.zeros(8, 1, 64, 64)
    x[:, :, 30:34, 30:34] = 1.0  # a 4x4 dot in the middle
    out = diff_augment(x, ["translation"])
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.full((8,), 16.0))  # the dot moves, whole
    for im in out[:, 0]:
        ys, xs = torch.nonzero(im, as_tuple=True)
        assert ys.max() - ys.min() == 3 and xs.max() - xs.min() == 3 and abs(int(ys.min()) - 30) <= 8
    ones = diff_augment(torch.ones(16, 1, 64, 64), ["translation"])
    assert (ones == 0).any() and ((ones == 0) | (ones == 1)).all()  # shifted-in border is zero


def test_cutout_zeroes_one_square_of_at_most_half_the_side():
    torch.manual_seed(2)
    out = diff_augment(torch.ones(16, 3, 64, 64), ["cutout"])
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 32 * 32).all()
    assert torch.equal(out[:, 0], out[:, 1])  # the same hole in every channel


def test_colour_changes_each_image_differently():
    torch.manual_seed(3)
    x = torch.full((6, 3, 8, 8), 0.2)
    out = diff_augment(x, ["color"])
    means = out.mean(dim=(1, 2, 3))
    assert means.unique().numel() == 6 and (means - 0.2).abs().max() <= 0.5 + 1e-6


def test_the_wrapper_augments_what_d_sees_and_rejects_unknown_policies():
    torch.manual_seed(4)
    d = Discriminator64(ndf=4, norm="spectral").eval()
    wrapped = AugmentedDiscriminator(d, ["translation", "cutout"])
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    assert wrapped(x).shape == (3,) and not torch.equal(wrapped(x), wrapped(x))  # a fresh draw per call
    assert dict(wrapped.named_parameters()).keys() == {f"d.{k}" for k, _ in d.named_parameters()}
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'flip'"):
        AugmentedDiscriminator(d, ["flip"])


def test_a_clip_gets_one_draw_for_all_its_frames_and_the_given_fill():
    torch.manual_seed(5)
    frame = torch.zeros(1, 64, 64)
    frame[:, 30:34, 30:34] = 1.0
    clips = frame.expand(6, 8, 64, 64)[:, None].clone() * 2 - 1  # (B, C=1, T=8, H, W), black background -1
    for policy in (["translation"], ["cutout"], ["translation", "cutout"]):
        out = diff_augment(clips, policy, fill=-1.0)
        assert out.shape == clips.shape
        assert torch.equal(out, out[:, :, :1].expand_as(out)), policy  # every frame moved and cut alike
        assert ((out == -1) | (out == 1)).all()  # only black is filled in
    moved = diff_augment(clips, ["translation"], fill=-1.0)
    assert ((moved == 1).sum(dim=(1, 2, 3, 4)) == 16 * 8).all()  # the dot moves, whole, in every frame


def test_window_policies():
    torch.manual_seed(6)
    x = torch.randn(8, 3, 64)
    out = diff_augment(x, ["jitter", "scale", "shift"])
    assert out.shape == x.shape and not torch.equal(out, x)
    shifted = diff_augment(x, ["shift"])
    assert torch.allclose(shifted.sort(dim=2).values, x.sort(dim=2).values)  # a shift only moves samples
    scaled = diff_augment(x, ["scale"])
    ratio = scaled / x
    assert torch.allclose(ratio, ratio[:, :, :1].expand_as(ratio), atol=1e-5)  # one factor per sample and channel
