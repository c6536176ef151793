"""Training and sampling the sensor GAN variants with the shared adversarial harness."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pipeline.nn.init import init_normal
from pipeline.sensor.nets import Discriminator1D, Generator1D
from pipeline.sensor.data import MinMaxScaler, WindowSet
from pipeline.sensor.params import GanVariant, SensorTrainGanParams
from pipeline.train import gan as latent
from pipeline.train.adversarial import AdversarialTrainer
from pipeline.train.augment import AugmentedDiscriminator
from pipeline.train.gan import LabelledSampler, LatentGanFamily, sample, train_config


def build(v: GanVariant, channels: int, length: int, n_classes: int,
          band: float = 0.0) -> tuple[Generator1D, Discriminator1D]:
    """G and D of variant ``v``; ``band``: the data's band limit (``pipeline.sensor.data.band_limit``; 0: none),
    which G keeps to as ``v.g_band`` says."""
    k = n_classes if v.conditional else 0
    up = round(1 / band) if band and v.g_band == "upsample" else 1
    if up > 1 and abs(up * band - 1) > 1e-6:
        raise ValueError(f"g_band upsample needs an integer rate ratio, got {1 / band:g}")
    g = Generator1D(channels, length, v.latent_dim, v.ngf, k, pad=v.g_pad,
                    lowpass=band if v.g_band == "lowpass" else 0.0, upsample=up,
                    noise=v.g_noise)
    # d_norm "spectral" replaces batch norm (SNGAN); a WGAN-GP critic never has batch norm
    d = Discriminator1D(channels, length, v.ndf, k,
                        norm="batch" if v.d_norm == "batch" and v.loss != "wgan-gp" else "none",
                        spectral=v.d_norm == "spectral", mbstd=v.mbstd, standardised=v.d_standardised)
    init_normal(g)
    init_normal(d)
    return g, d


def train(p: SensorTrainGanParams, v: GanVariant, seed: int, train_set: WindowSet, scaler: MinMaxScaler,
          n_classes: int, checkpoints: Path | None = None,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None,
          band: float = 0.0) -> tuple[Generator1D, list[dict]]:
    """Fit one variant with ``seed`` on the training windows scaled to [-1, 1]; returns the generator to
    sample from (its EMA copy when ``v.ema`` > 0) and the loss history. ``band``: as in ``build``."""
    torch.manual_seed(seed)
    _, channels, length = train_set.x.shape
    g, d = build(v, channels, length, n_classes, band)
    if v.augment:  # D sees real and generated windows through the same random augmentation
        d = AugmentedDiscriminator(d, v.augment)
    family = LatentGanFamily(g, d, v.latent_dim, v.loss, v.conditional, v.gp_weight,
                             diversity_sensitive=v.diversity_sensitive, feature_matching=v.feature_matching,
                             spectrum_matching=v.spectrum_matching)
    cfg = train_config(p, v, seed, epochs=v.epochs, batch_size=v.batch_size, optimizer_G=v.optimizer_G,
                       optimizer_D=v.optimizer_D, ema=v.ema)
    x = torch.as_tensor(scaler.transform(train_set.x), dtype=torch.float32)
    y = torch.as_tensor(train_set.y, dtype=torch.long)
    trainer = AdversarialTrainer(family, cfg, checkpoints)
    history = trainer.fit(LabelledSampler(x, y, v.batch_size, seed), on_epoch)
    return trainer.generator().cpu().eval(), history


def generate(g: Generator1D, v: GanVariant, n_classes: int, per_class: int, scaler: MinMaxScaler,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` windows for every class, in the sensor's units; labels are the conditions asked for
    (for an unconditional generator they only say which draw it was)."""
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    x = sample(g, labels, v.latent_dim, seed, v.conditional)
    return scaler.inverse(x.numpy()), labels.numpy()


def save_generator(path: Path, g: Generator1D, v: GanVariant, channels: int, length: int, n_classes: int,
                   band: float = 0.0) -> None:
    latent.save_generator(path, g, v, channels=channels, length=length, n_classes=n_classes, band=band)


def load_generator(path: Path) -> tuple[Generator1D, GanVariant]:
    g, v, _ = latent.load_generator(path, GanVariant, lambda v, s: build(
        v, s["channels"], s["length"], s["n_classes"], s.get("band", 0.0))[0])
    return g, v
