"""Params sections of the video domain: video_prepare, video_train_gan, video_classify.

The dataclass defaults are the issue's scale (64×64×16 clips, DCGAN widths); ``params.yaml`` holds the
fast demo profile (32×32×8 clips, narrow networks) and documents the full sizes next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pipeline.errors import PipelineError
from pipeline.fields import DEVICES, NONNEG, POS, UNIT, _c
from pipeline.train.gan_params import (EMA_DECAY, LOSSES, OPTIMIZERS, GanSection, IMAGE_AUGMENTS, augment_policies,
                                       variant_names, variant_overrides)

FRACTION = (lambda v: 0 < v < 1, "in (0, 1)")
POW2 = (lambda v: v >= 16 and v & (v - 1) == 0, "a power of two >= 16")
LABELS = ("motion", "digit", "digit_motion")
MOTIONS = ("horizontal", "diagonal", "vertical")
INITS = ("scratch", "inflate")
ARCHS = ("conv3d", "sprite")
NORMS = ("batch", "none", "spectral")
CLASSIFIERS = ("c3d", "r2plus1d")


@dataclass(frozen=True)
class VideoPrepareParams:
    """Moving MNIST (embedded) or a UCF-101-style folder → uint8 clips (N, C, T, H, W), train/test."""

    source: str = _c("moving_mnist", desc="'moving_mnist' or a folder of <class>/<video file>")
    label: str = _c("motion", choices=LABELS)
    digits: list[int] = _c(list(range(10)), lambda v: len(v) > 0 and len(set(v)) == len(v) and all(0 <= d <= 9 for d in v),
                           "(digit classes 0-9, non-empty, no repeats)")
    motions: list[str] = _c(list(MOTIONS), lambda v: len(v) > 0 and len(set(v)) == len(v) and set(v) <= set(MOTIONS),
                            "(of horizontal, diagonal, vertical; non-empty, no repeats)")
    size: int = _c(64, *POW2)
    frames: int = _c(16, lambda v: v >= 3, ">= 3")
    channels: int = _c(1, choices=(1, 3))
    digit_size: int = _c(28, *POS)
    speed: tuple[float, float] = _c((2.0, 4.0), lambda v: 0 < v[0] <= v[1], "0 < min <= max (pixels per frame)")
    train_clips: int = _c(512, *POS)
    test_clips: int = _c(256, *POS)
    fps: float = _c(5.0, *POS)
    clips_per_video: int = _c(1, *POS)
    test: float = _c(0.3, *FRACTION)
    seed: int = _c(0, *NONNEG)


@dataclass(frozen=True)
class GanVariant:
    """One GAN variant: the section's training defaults with these keys overridden."""

    arch: str = _c("conv3d", choices=ARCHS, desc="generator: conv3d (seed Table 4.1) or sprite (content/motion "
                   "split: a 2D sprite, a trajectory, a differentiable renderer)")
    init: str = _c("scratch", choices=INITS, desc="scratch, or inflate a 2D frame GAN (seed §4.2)")
    loss: str = _c("bce", choices=LOSSES)
    norm: str = _c("batch", choices=NORMS)
    latent_dim: int = _c(100, *POS)
    ngf: int = _c(64, *POS)
    ndf: int = _c(64, *POS)
    optimizer_G: str = _c("adam", choices=OPTIMIZERS)
    optimizer_D: str = _c("adam", choices=OPTIMIZERS)
    lr_G: float = _c(2e-4, *POS)
    lr_D: float = _c(2e-4, *POS)
    beta1: float = _c(0.5, *UNIT)
    gp_weight: float = _c(10.0, *NONNEG)
    d_steps: int = _c(1, *POS)
    lambda_adv: float = _c(1.0, *NONNEG)
    lambda_feat: float = _c(0.0, *NONNEG)
    lambda_vid: float = _c(0.0, *NONNEG)
    balance: Optional[tuple[float, float]] = _c(None, lambda v: 0 <= v[0] < v[1], "(r_low, r_high), 0 <= low < high")
    pretrain_epochs: int = _c(1, *POS)
    ema: float = _c(0.0, *EMA_DECAY)
    conditional: bool = _c(False, desc="class-conditional G (class embedding) and projection D")
    augment: list[str] = augment_policies(IMAGE_AUGMENTS)  # DiffAugment on D's inputs, one draw per clip
    frame_d: bool = _c(False, desc="add a 2D frame discriminator (every frame scored) to the video one (MoCoGAN D_I)")


@dataclass(frozen=True)
class VideoTrainGanParams(GanVariant, GanSection):
    """3D-conv video GANs on the training clips; its GanVariant fields are the defaults that
    ``variants.<name>`` override per variant."""

    key: ClassVar[str] = "video_train_gan"
    variant_cls: ClassVar[type] = GanVariant

    run: list[str] = variant_names("dcgan3d")
    variants: dict[str, dict] = variant_overrides("dcgan3d")
    epochs: int = _c(20, *POS)
    batch_size: int = _c(16, lambda v: v >= 2, ">= 2")
    samples: int = _c(256, lambda v: v >= 2, ">= 2")
    interpolations: int = _c(4, *POS)
    interpolation_steps: int = _c(6, lambda v: v >= 2, ">= 2")
    seeds: list[int] = _c([0], lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                          "(training seeds >= 0, non-empty, no repeats)")
    device: str = _c("auto", choices=DEVICES)

    def variant(self, name: str) -> GanVariant:
        """The named variant, validated, and its loss and norm checked together."""
        v = super().variant(name)
        prefix = f"{self.key}.variants.{name}"
        if v.loss == "wgan-gp" and v.norm == "batch":
            raise PipelineError(f"{prefix}.norm: a WGAN-GP critic cannot use batch norm (the penalty is per "
                                "sample); set norm: none")
        if v.init == "inflate" and (v.norm == "spectral" or v.conditional):
            raise PipelineError(f"{prefix}.init: inflate works with norm batch|none and unconditional nets only")
        if v.init == "inflate" and v.frame_d:
            raise PipelineError(f"{prefix}.frame_d: inflate trains its own frame GAN first; use frame_d: false")
        if v.init == "inflate" and v.arch != "conv3d":
            raise PipelineError(f"{prefix}.init: inflate needs arch conv3d (a sprite generator has no 3D twin)")
        return v


@dataclass(frozen=True)
class VideoClassifyParams:
    """C3D-style scorer on real clips; IS, MS-SSIM diversity, temporal consistency per variant; optional
    activation-maximisation samples conditioned by a *different* network than the scorer (seed §4.4, §4.6.3)."""

    classifier: str = _c("c3d", choices=CLASSIFIERS)
    conditioner: str = _c("r2plus1d", choices=CLASSIFIERS)
    width: int = _c(32, *POS)
    epochs: int = _c(10, *POS)
    batch_size: int = _c(16, lambda v: v >= 2, ">= 2")
    lr: float = _c(1e-3, *POS)
    is_splits: int = _c(10, *POS)
    ms_ssim_pairs: int = _c(200, *POS)
    am_steps: int = _c(0, *NONNEG)
    am_lr: float = _c(0.05, *POS)
    am_samples: int = _c(60, lambda v: v >= 2, ">= 2")
    gif_clips: int = _c(8, *POS)
    seed: int = _c(0, *NONNEG)
    device: str = _c("auto", choices=DEVICES)


SECTIONS: dict[str, type] = {
    "video_prepare": VideoPrepareParams,
    "video_train_gan": VideoTrainGanParams,
    "video_classify": VideoClassifyParams,
}


def check(sections: dict[str, Any]) -> None:
    """Cross-key checks: variants validate, digits fit and bounce inside the frame, the scorer is not the
    conditioner, the inception-score folds fit the sample counts."""
    gan, prep, clf = sections["video_train_gan"], sections["video_prepare"], sections["video_classify"]
    gan.run_variants()
    if prep.source == "moving_mnist":
        if prep.digit_size >= prep.size:
            raise PipelineError(f"video_prepare.digit_size: expected < size ({prep.size}), got {prep.digit_size}")
        if prep.speed[1] >= prep.size - prep.digit_size:
            raise PipelineError(f"video_prepare.speed: max speed must be < size - digit_size "
                                f"({prep.size - prep.digit_size}), so one bounce per frame suffices; "
                                f"got {prep.speed[1]}")
    if clf.classifier == clf.conditioner:
        raise PipelineError(f"video_classify.conditioner: must differ from the scorer ({clf.classifier!r}); "
                            "a network that steers generation must not also grade it (seed §4.6.3)")
    if clf.is_splits > gan.samples:
        raise PipelineError(f"video_classify.is_splits: expected <= video_train_gan.samples ({gan.samples}), "
                            f"got {clf.is_splits}")
    if clf.am_steps and clf.is_splits > clf.am_samples:
        raise PipelineError(f"video_classify.is_splits: expected <= am_samples ({clf.am_samples}), "
                            f"got {clf.is_splits}")
