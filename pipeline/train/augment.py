"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) in front of a GAN's discriminator.

With a few hundred training samples a discriminator memorises them within a few hundred steps and the
generator's gradient turns to noise. DiffAugment applies the same random, differentiable transforms to
real and generated samples every time D sees them (in D's step and in G's), so D cannot memorise the
real set and G still gets a gradient through the transform. One registry serves every domain; each
domain's params say which policies suit its data.

Images (B, C, H, W) and clips (B, C, T, H, W) in [-1, 1]; a clip gets one draw for all its frames, so
motion is left intact. The policies follow the paper's reference code:

* ``color``: random brightness (±0.5), saturation (×[0, 2]) and contrast (×[0.5, 1.5]) per sample;
* ``translation``: shift by up to 1/8 of the side, the shifted-in border filled with ``fill``;
* ``cutout``: a square of half the side at a random centre (clipped at the border) set to ``fill``.

Windows (B, C, T) in [-1, 1]:

* ``jitter``: + N(0, 0.03²) per step;
* ``scale``: × a per-sample, per-channel factor exp(N(0, 0.1²));
* ``shift``: a circular time shift of up to T/8 steps.

Every transform keeps the shape; policies run in the order given, a fresh random draw per call.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    """A uniform [0, 1) draw per sample, broadcastable against ``x``."""
    return torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)


def _color(x: torch.Tensor, fill: float) -> torch.Tensor:
    x = x + (_per_sample(x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_per_sample(x) * 2) + mean
    mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
    return (x - mean) * (_per_sample(x) + 0.5) + mean


def _offsets(b: int, side: int, ratio: float, device: torch.device) -> torch.Tensor:
    s = int(side * ratio + 0.5)
    return torch.randint(-s, s + 1, (b,), device=device)


def _translation(x: torch.Tensor, fill: float, ratio: float = 0.125) -> torch.Tensor:
    b, (h, w) = x.shape[0], x.shape[-2:]
    rows = torch.arange(h, device=x.device)[None] + _offsets(b, h, ratio, x.device)[:, None]  # source row per output row
    cols = torch.arange(w, device=x.device)[None] + _offsets(b, w, ratio, x.device)[:, None]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # (B, H, W)
    idx = (rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]).flatten(1)  # (B, H·W)
    flat = x.flatten(-2)
    idx = idx.view(b, *([1] * (flat.dim() - 2)), h * w).expand(flat.shape)
    moved = flat.gather(-1, idx).view_as(x)
    keep = inside.view(b, *([1] * (x.dim() - 3)), h, w).to(x.dtype)
    return moved * keep + fill * (1 - keep)


def _cutout(x: torch.Tensor, fill: float, ratio: float = 0.5) -> torch.Tensor:
    b, (h, w) = x.shape[0], x.shape[-2:]
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b,), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b,), device=x.device) - cw // 2
    r, c = torch.arange(h, device=x.device)[None], torch.arange(w, device=x.device)[None]
    hole = (((r >= top[:, None]) & (r < top[:, None] + ch))[:, :, None]
            & ((c >= left[:, None]) & (c < left[:, None] + cw))[:, None, :])
    keep = (~hole).view(b, *([1] * (x.dim() - 3)), h, w).to(x.dtype)
    return x * keep + fill * (1 - keep)


def _jitter(x: torch.Tensor, fill: float) -> torch.Tensor:
    return x + 0.03 * torch.randn_like(x)


def _scale(x: torch.Tensor, fill: float) -> torch.Tensor:
    return x * torch.exp(0.1 * torch.randn(*x.shape[:2], 1, device=x.device, dtype=x.dtype))


def _shift(x: torch.Tensor, fill: float) -> torch.Tensor:
    b, c, t = x.shape
    k = torch.randint(-(t // 8), t // 8 + 1, (b, 1, 1), device=x.device)
    idx = (torch.arange(t, device=x.device).view(1, 1, t) - k) % t
    return x.gather(2, idx.expand(b, c, t))


POLICIES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "color": _color, "translation": _translation, "cutout": _cutout,   # images and clips
    "jitter": _jitter, "scale": _scale, "shift": _shift,                # windows (B, C, T)
}


def check_policies(policies: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r} (known: {', '.join(POLICIES)})")
    return tuple(policies)


def diff_augment(x: torch.Tensor, policies: tuple[str, ...] | list[str], fill: float = 0.0) -> torch.Tensor:
    """``x`` through each named policy in order; ``fill`` is what translation and cutout leave behind
    (0, the reference's choice, or e.g. -1 for black on a black background)."""
    for name in policies:
        x = POLICIES[name](x, fill)
    return x


class AugmentedDiscriminator(nn.Module):
    """D(augment(x), y): wraps a discriminator so that everything it judges, real or generated, in D's
    step and in G's, is augmented the same way (the DiffAugment recipe). ``features`` (when D has it, for
    feature matching) sees augmented input too."""

    def __init__(self, discriminator: nn.Module, policies: tuple[str, ...] | list[str], fill: float = 0.0) -> None:
        super().__init__()
        self.d, self.policies, self.fill = discriminator, check_policies(policies), fill

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policies, self.fill)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.d(self.augment(x), y)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.d.features(self.augment(x))
