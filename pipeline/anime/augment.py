"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for the discriminator's input.

With a few hundred training faces the discriminator memorises them within a few hundred steps and the
generator's gradient turns to noise. DiffAugment applies the same random, differentiable transforms to
real and generated images every time D sees them (in D's step and in G's), so D cannot memorise the real
set and G still gets a gradient through the transform. The policies follow the paper's reference code:

* ``color``: random brightness (±0.5), saturation (×[0, 2]) and contrast (×[0.5, 1.5]) per image;
* ``translation``: shift by up to 1/8 of the side, zero padded;
* ``cutout``: a zeroed square of half the side at a random place.

Images are (B, C, H, W) in [-1, 1]; every transform keeps the shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _color(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    iy, ix = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(iy[None] + dy + 1, 0, h + 1)
    gx = torch.clamp(ix[None] + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # the border row/column of zeros is where shifted-in pixels come from
    ib = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[ib, gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    iy, ix = torch.meshgrid(torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(iy[None] + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(ix[None] + ox - cw // 2, 0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(b, device=x.device)[:, None, None], gy, gx] = 0
    return x * mask[:, None]


POLICIES = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policies: tuple[str, ...] | list[str]) -> torch.Tensor:
    """``x`` through each named policy in order (a fresh random draw per call and per image)."""
    for name in policies:
        x = POLICIES[name](x)
    return x


class AugmentedDiscriminator(nn.Module):
    """D(augment(x), y): wraps a discriminator so that everything it judges, real or generated, in D's
    step and in G's, is augmented the same way (the DiffAugment recipe)."""

    def __init__(self, discriminator: nn.Module, policies: tuple[str, ...] | list[str]) -> None:
        super().__init__()
        unknown = [p for p in policies if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {unknown[0]!r} (known: {', '.join(POLICIES)})")
        self.d, self.policies = discriminator, tuple(policies)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.d(diff_augment(x, self.policies), y)
