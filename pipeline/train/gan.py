"""Latent-variable GAN family (DCGAN-style, optionally class-conditional) for the shared harness, and what
every GAN domain does around it the same way: harness settings from its params, saving and loading a
variant's generator.

Works for any data shape: sensor windows, images, clips. G(z[, y]) → sample; D(x[, y]) → logit (B,).
Losses: ``bce`` (non-saturating DCGAN), ``hinge``, ``wgan-gp`` (Gulrajani et al. 2017, penalty on
random interpolates of real and fake).

Two terms in G's loss work against within-class collapse (a generator that ignores z and draws one sample
per condition). Both use ratio = mean|G(z1, y) − G(z2, y)| / mean|z1 − z2| for a second latent draw z2 with
the same conditions: ``mode_seeking`` > 0 adds MSGAN's ``mode_seeking / (ratio + 1e-5)`` (Mao et al. 2019),
``diversity_sensitive`` > 0 adds DSGAN's linear reward ``−diversity_sensitive × ratio`` (Yang et al. 2019,
without its clipping). Their scales differ: on the sensor's tiny-set test MSGAN at 1.0 overpowered the
adversarial loss, and DSGAN at 1.0 fitted it.

Two more terms pull G's batch statistics toward the real batch's, class by class (one class when
unconditional): ``feature_matching`` > 0 adds the squared distance between the mean D features
(``D.features``) of real and generated samples (Salimans et al. 2016), ``spectrum_matching`` > 0 the mean
absolute difference of their log mean power spectra along the last axis (``class_log_spectra``), so
that G keeps the real band energies a time-series classifier reads (e.g. MiniRocket's dilated kernels).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.fields import parse_section
from pipeline.train.adversarial import TrainConfig

Batch = dict[str, torch.Tensor]


class LatentGanFamily:
    pooled: tuple[str, ...] = ()

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int, loss: str = "bce",
                 conditional: bool = False, gp_weight: float = 10.0, mode_seeking: float = 0.0,
                 diversity_sensitive: float = 0.0, feature_matching: float = 0.0,
                 spectrum_matching: float = 0.0) -> None:
        if loss not in ("bce", "hinge", "wgan-gp"):
            raise ValueError(f"unknown GAN loss {loss!r}")
        self.G, self.D, self.latent_dim = generator, discriminator, latent_dim
        self.loss, self.conditional, self.gp_weight = loss, conditional, gp_weight
        self.mode_seeking, self.diversity_sensitive = mode_seeking, diversity_sensitive
        self.feature_matching, self.spectrum_matching = feature_matching, spectrum_matching

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def parameters_of(self, role: str) -> list[nn.Parameter]:
        return list((self.G if role == "G" else self.D).parameters())

    def _labels(self, batch: Batch) -> torch.Tensor | None:
        return batch["y"] if self.conditional else None

    def _fake(self, batch: Batch) -> torch.Tensor:
        x = batch["x"]
        self._z = torch.randn(len(x), self.latent_dim, device=x.device)  # the mode-seeking term reuses it
        return self.G(self._z, self._labels(batch))

    def diversity_terms(self, batch: Batch, fake: torch.Tensor, logs: dict[str, float]) -> torch.Tensor:
        """The mode-seeking and diversity-sensitive terms for ``fake`` = G(z1, y) of the last ``_fake`` call
        and a new z2 with the same conditions (0 when both are off); logs the ratio as ``G_ms_ratio``."""
        if self.mode_seeking <= 0 and self.diversity_sensitive <= 0:
            return fake.new_zeros(())
        z2 = torch.randn_like(self._z)
        ratio = (fake - self.G(z2, self._labels(batch))).abs().mean() / (self._z - z2).abs().mean()
        logs["G_ms_ratio"] = float(ratio.detach())
        return self.mode_seeking / (ratio + 1e-5) - self.diversity_sensitive * ratio

    def matching_terms(self, batch: Batch, fake: torch.Tensor, logs: dict[str, float]) -> torch.Tensor:
        """The feature- and spectrum-matching terms of ``fake`` against the real batch, per class (0 when
        both are off); logs each as ``G_fm`` / ``G_spec``. Real statistics carry no gradient."""
        total = fake.new_zeros(())
        if self.feature_matching <= 0 and self.spectrum_matching <= 0:
            return total
        real, y = batch["x"], self._labels(batch)
        if self.feature_matching > 0:
            with torch.no_grad():
                f_real = self.D.features(real)
            fm = ((class_means(f_real, y) - class_means(self.D.features(fake), y)) ** 2).mean()
            logs["G_fm"] = float(fm.detach())
            total = total + self.feature_matching * fm
        if self.spectrum_matching > 0:
            with torch.no_grad():
                s_real = class_log_spectra(real, y)
            spec = (s_real - class_log_spectra(fake, y, floor_of=real)).abs().mean()
            logs["G_spec"] = float(spec.detach())
            total = total + self.spectrum_matching * spec
        return total

    def fresh_fakes(self, batch: Batch) -> Batch:
        return {"fake": self._fake(batch).detach()}

    def generator_loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float], Batch]:
        fake = self._fake(batch)
        out = self.D(fake, self._labels(batch))
        if self.loss == "bce":
            loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        else:
            loss = -out.mean()
        logs = {"G_adv": float(loss.detach())}
        loss = loss + self.diversity_terms(batch, fake, logs) + self.matching_terms(batch, fake, logs)
        return loss, logs, {"fake": fake}

    def discriminator_loss(self, batch: Batch, fakes: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake, y = batch["x"], fakes["fake"], self._labels(batch)
        d_real, d_fake = self.D(real, y), self.D(fake, y)
        logs = {"D_real": float(d_real.detach().mean()), "D_fake": float(d_fake.detach().mean())}
        if self.loss == "bce":
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        elif self.loss == "hinge":
            loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        else:
            gp = gradient_penalty(self.D, real, fake, y)
            logs["wasserstein"] = float((d_real - d_fake).detach().mean())
            logs["gp"] = float(gp.detach())
            loss = d_fake.mean() - d_real.mean() + self.gp_weight * gp
        return loss, logs


def class_means(f: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``f`` (B, ...) over the batch for each class in ``y`` (B,) that occurs, in class order,
    stacked (K, ...); ``y`` None: one group, (1, ...)."""
    if y is None:
        return f.mean(dim=0, keepdim=True)
    return torch.stack([f[y == c].mean(dim=0) for c in torch.unique(y)])


def class_log_spectra(x: torch.Tensor, y: torch.Tensor | None, floor_of: torch.Tensor | None = None,
                      floor: float = 1e-3) -> torch.Tensor:
    """Per class (``class_means``), log of the mean power spectrum |rfft|² along the last axis of ``x``
    (B, ..., T), (K, ..., T // 2 + 1). Before the log each class and channel gets a floor of ``floor`` × its
    mean power over frequencies in ``floor_of`` (default ``x``), so that bins far below the signal (an
    empty band) do not dominate, while a quiet class (standing still) is judged on its own scale."""
    p = class_means(torch.fft.rfft(x.float(), dim=-1).abs() ** 2, y)
    ref = p if floor_of is None else class_means(torch.fft.rfft(floor_of.float(), dim=-1).abs() ** 2, y)
    return torch.log(p + floor * ref.detach().mean(dim=-1, keepdim=True))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     y: torch.Tensor | None = None) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] over x̂ = εx + (1−ε)x̃, ε ~ U(0, 1) per sample."""
    eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(mixed, y)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class LabelledSampler:
    """Shuffled (x, y) batches per epoch from a (seed, epoch) generator; the last partial batch is dropped."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, min(batch_size, len(x)), seed
        self.steps = max(1, len(x) // self.batch_size)

    def __call__(self, epoch: int) -> Iterator[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        order = torch.randperm(len(self.x), generator=g)
        for s in range(self.steps):
            ix = order[s * self.batch_size:(s + 1) * self.batch_size]
            yield {"x": self.x[ix], "y": self.y[ix]}


@torch.no_grad()
def sample(generator: nn.Module, labels: torch.Tensor, latent_dim: int, seed: int, conditional: bool,
           device: torch.device | str = "cpu", batch: int = 256) -> torch.Tensor:
    """Samples for ``labels`` (their condition; ignored by unconditional generators), from a fixed seed."""
    generator.eval()
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(len(labels), latent_dim, generator=g)
    out = []
    for i in range(0, len(z), batch):
        y = labels[i:i + batch].to(device) if conditional else None
        out.append(generator(z[i:i + batch].to(device), y).float().cpu())
    return torch.cat(out)


def train_config(p: Any, v: Any, seed: int, **settings: Any) -> TrainConfig:
    """Harness settings of one run (variant ``v``, ``seed``) of a ``<domain>_train_gan`` section ``p``: the
    section's epochs, batch size and device, the variant's learning rates, beta1 and critic steps, no history
    pool and a constant learning rate; ``settings`` add the domain's own (optimizers, EMA, ...) or override."""
    return TrainConfig(**{"epochs": p.epochs, "lr": v.lr_G, "lr_D": v.lr_D, "beta1": v.beta1,
                          "batch_size": p.batch_size, "pool_size": 0, "seed": seed,
                          "device": p.device,
                          "schedule": "constant", "d_steps": v.d_steps, **settings})


def save_generator(path: Path, g: nn.Module, variant: Any, **shape: Any) -> None:
    """``g``'s weights with its variant (a GanVariant dataclass) and ``shape``, what rebuilding it takes."""
    torch.save({"variant": dataclasses.asdict(variant), **shape, "state_dict": g.state_dict()}, path)


def load_generator(path: Path, variant_cls: type, build: Callable[[Any, dict[str, Any]], nn.Module]
                   ) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Inverse of ``save_generator``: ``build(variant, saved)`` makes the generator from the saved shape keys.

    Returns it in eval mode, the variant (validated like params, so saved lists come back as tuples) and
    everything saved."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    v = parse_section(variant_cls, saved["variant"], f"{path}: variant")
    g = build(v, saved)
    g.load_state_dict(saved["state_dict"])
    return g.eval(), v, saved
