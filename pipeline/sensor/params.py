"""Params sections of the sensor domain: sensor_prepare, sensor_train_gan, sensor_classify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.errors import PipelineError
from pipeline.fields import DEVICES, NONNEG, POS, UNIT, _c
from pipeline.train.gan_params import (EMA_DECAY, LOSSES, OPTIMIZERS, GanSection, WINDOW_AUGMENTS, augment_policies,
                                       variant_names, variant_overrides)

FRACTION = (lambda v: 0 < v < 1, "in (0, 1)")
G_BANDS = ("none", "lowpass", "upsample")  # how G keeps to the band of upsampled data (pipeline.sensor.gan.build)


@dataclass(frozen=True)
class SensorPrepareParams:
    """Recordings → resampled, windowed, split by source (subject or recording) so nothing leaks."""

    source: str = _c("basic_motions", desc="'basic_motions' or a MotionSense folder (A_DeviceMotion_data)")
    gyroscope: bool = _c(False)
    rate_hz: float = _c(50.0, *POS)
    window: int = _c(200, lambda v: v >= 16 and v % 8 == 0, ">= 16 and a multiple of 8 (the generator upsamples x8)")
    stride: int = _c(50, *POS)
    val: float = _c(0.2, *FRACTION)
    test: float = _c(0.5, *FRACTION)
    seed: int = _c(0, *NONNEG)


@dataclass(frozen=True)
class GanVariant:
    """One GAN variant; as fields of the section, the defaults that ``variants.<name>`` override."""

    conditional: bool = _c(False)
    loss: str = _c("bce", choices=LOSSES)
    latent_dim: int = _c(100, *POS)
    ngf: int = _c(32, *POS)
    ndf: int = _c(32, *POS)
    optimizer_G: str = _c("adam", choices=OPTIMIZERS)
    optimizer_D: str = _c("sgd", choices=OPTIMIZERS)  # the seed: SGD discriminator + Adam generator, lr 0.002
    lr_G: float = _c(0.002, *POS)
    lr_D: float = _c(0.002, *POS)
    beta1: float = _c(0.5, *UNIT)
    gp_weight: float = _c(10.0, *NONNEG)
    d_steps: int = _c(1, *POS)
    g_pad: str = _c("zeros", choices=("zeros", "replicate", "reflect"))  # G's conv padding (seed: zeros)
    # when sensor_prepare upsampled the recordings (meta.json source_rate_hz): G's window holds only their band.
    # lowpass: a fixed FIR at their Nyquist frequency ends G (nets.LowPass1D); upsample: G draws at their rate
    # and a fixed polyphase layer upsamples like resample_poly (nets.UpsampleFIR; an integer ratio); none: neither
    g_band: str = _c("none", choices=G_BANDS)
    g_noise: bool = _c(False)  # G adds white noise with a learned per-step scale after tanh (nets.Generator1D)
    d_norm: str = _c("batch", choices=("batch", "none", "spectral"))  # D's normalisation (a WGAN-GP critic: none)
    mbstd: bool = _c(False)  # a minibatch-std channel in D (it sees a batch of look-alikes)
    d_standardised: bool = _c(False)  # D also sees each window standardised per channel (nets.StandardisedView)
    augment: list[str] = augment_policies(WINDOW_AUGMENTS)
    ema: float = _c(0.0, *EMA_DECAY)
    diversity_sensitive: float = _c(0.0, *NONNEG)  # DSGAN's diversity reward on G (pipeline.train.gan); 0: off
    # G's batch statistics against the real batch's, per class (pipeline.train.gan); 0: off
    feature_matching: float = _c(0.0, *NONNEG)   # mean D features (D.features)
    spectrum_matching: float = _c(0.0, *NONNEG)  # log mean power spectrum along time
    epochs: int = _c(40, *POS)
    batch_size: int = _c(32, *POS)


@dataclass(frozen=True)
class SensorTrainGanParams(GanVariant, GanSection):
    """1D GANs on the training windows; ``variants.<name>`` override the GanVariant fields per variant."""

    key: ClassVar[str] = "sensor_train_gan"
    variant_cls: ClassVar[type] = GanVariant

    run: list[str] = variant_names("dcgan")
    variants: dict[str, dict] = variant_overrides("dcgan")
    samples_per_class: int = _c(100, *POS)
    seeds: list[int] = _c([0], lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                          "a non-empty list of distinct seeds >= 0 (one training run per variant and seed)")
    device: str = _c("auto", choices=DEVICES)


@dataclass(frozen=True)
class SensorClassifyParams:
    """Real-data classifier, generated-data accuracy, TSTR/TRTR (ours + MiniRocket), distribution checks."""

    epochs: int = _c(30, *POS)
    batch_size: int = _c(32, *POS)
    lr: float = _c(1e-3, *POS)
    minirocket_kernels: int = _c(2000, lambda v: v >= 84, ">= 84")
    seed: int = _c(0, *NONNEG)
    plot_examples: int = _c(3, *POS)
    device: str = _c("auto", choices=DEVICES)


SECTIONS: dict[str, type] = {
    "sensor_prepare": SensorPrepareParams,
    "sensor_train_gan": SensorTrainGanParams,
    "sensor_classify": SensorClassifyParams,
}


def check(sections: dict[str, Any]) -> None:
    """Cross-key checks: every variant in ``run`` exists and validates; stride <= window."""
    sections["sensor_train_gan"].run_variants()
    prep = sections["sensor_prepare"]
    if prep.stride > prep.window:
        raise PipelineError(f"sensor_prepare.stride: expected <= window ({prep.window}), got {prep.stride}")
    if prep.val + prep.test >= 1:
        raise PipelineError(f"sensor_prepare.test: val + test must be < 1, got {prep.val} + {prep.test}")
