"""Pluggable generator loss terms for the CycleGAN family (seed §2.6, Table 3.2), chosen by name.

Each term takes a ``CycleContext`` (the images of one generator step plus lazily computed features)
and returns a scalar. Feature losses are per-sample sums of squared differences, averaged over the
batch, so the small λ values of the seed (e.g. 1e-5) keep their meaning.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable

import torch
import torch.nn.functional as F

from pipeline.detection.params import LOSS_TERMS


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss against a target of 1 (real) or 0 (fake)."""
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


def sse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of squared differences, averaged over the batch."""
    return (a.float() - b.float()).pow(2).flatten(1).sum(1).mean()


class CycleContext:
    """Images of one generator step: x (synthetic), y (real), translations and reconstructions."""

    def __init__(self, fam: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        self.fam, self.x, self.y = fam, x, y
        self.fake_y, self.att_x = fam.translate_xy(x)
        self.fake_x, self.att_y = fam.translate_yx(y)
        self.rec_x, _ = fam.translate_yx(self.fake_y)
        self.rec_y, _ = fam.translate_xy(self.fake_x)
        self._vgg: dict[int, dict[str, torch.Tensor]] = {}

    def vgg(self, t: torch.Tensor, target: bool = False) -> dict[str, torch.Tensor]:
        key = id(t)
        if key not in self._vgg:
            if target:
                with torch.no_grad():
                    self._vgg[key] = self.fam.vgg(t)
            else:
                self._vgg[key] = self.fam.vgg(t)
        return self._vgg[key]

    @cached_property
    def idt_y(self) -> torch.Tensor:  # G_XY should leave real images alone
        return self.fam.G_XY(self.y)

    @cached_property
    def idt_x(self) -> torch.Tensor:
        return self.fam.G_YX(self.x)


def _feat_sse(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(sse(a[k], b[k]) for k in a)


def gan(c: CycleContext) -> torch.Tensor:
    return lsgan(c.fam.D_Y(c.fam.disc_view(c.fake_y, c.att_x)), True) + \
        lsgan(c.fam.D_X(c.fam.disc_view(c.fake_x, c.att_y)), True)


def cyc_pixel(c: CycleContext) -> torch.Tensor:
    return F.l1_loss(c.rec_x, c.x) + F.l1_loss(c.rec_y, c.y)


def id_pixel(c: CycleContext) -> torch.Tensor:
    return F.l1_loss(c.idt_y, c.y) + F.l1_loss(c.idt_x, c.x)


def cyc_feat(c: CycleContext) -> torch.Tensor:
    return _feat_sse(c.vgg(c.rec_x), c.vgg(c.x, True)) + _feat_sse(c.vgg(c.rec_y), c.vgg(c.y, True))


def id_feat(c: CycleContext) -> torch.Tensor:
    return _feat_sse(c.vgg(c.idt_y), c.vgg(c.y, True)) + _feat_sse(c.vgg(c.idt_x), c.vgg(c.x, True))


def cyc_disc_feat(c: CycleContext) -> torch.Tensor:
    """Cycle consistency measured in the discriminators' layers 1-4 instead of pixels."""
    total = torch.zeros((), device=c.x.device)
    for disc, rec, orig in ((c.fam.D_X, c.rec_x, c.x), (c.fam.D_Y, c.rec_y, c.y)):
        with torch.no_grad():
            target = disc.features(orig)
        total = total + sum(sse(a, b) for a, b in zip(disc.features(rec), target))
    return total


def mean_feat(c: CycleContext) -> torch.Tensor:
    """Pull the batch-mean VGG feature of translations toward the other set's mean feature."""
    fy, fx = c.vgg(c.fake_y), c.vgg(c.fake_x)
    return sum(sse(fy[k].mean(0, keepdim=True), c.fam.mean_y[k][None]) +
               sse(fx[k].mean(0, keepdim=True), c.fam.mean_x[k][None]) for k in fy)


LOSSES: dict[str, Callable[[CycleContext], torch.Tensor]] = {
    "gan": gan, "cyc_pixel": cyc_pixel, "id_pixel": id_pixel, "cyc_feat": cyc_feat, "id_feat": id_feat,
    "cyc_disc_feat": cyc_disc_feat, "mean_feat": mean_feat,
}
if tuple(LOSSES) != LOSS_TERMS:  # params validate names without importing torch; keep both lists in step
    raise ImportError(f"refiner losses {tuple(LOSSES)} != pipeline.detection.params.LOSS_TERMS {LOSS_TERMS}")
