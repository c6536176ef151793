"""Params sections of the anime domain: anime_prepare, anime_train_gan, anime_classify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pipeline.errors import PipelineError
from pipeline.fields import DEVICES, NONNEG, POS, UNIT, _c
from pipeline.train.gan_params import (EMA_DECAY, IMAGE_AUGMENTS, LOSSES, GanSection, augment_policies,
                                       variant_names, variant_overrides)

FRACTION = (lambda v: 0 < v < 1, "in (0, 1)")
D_NORMS = ("auto", "batch", "none", "spectral")
PROCEDURAL = "procedural"
# the procedural set's labelled attributes (pipeline.anime.faces draws them)
ATTRIBUTES = ("hair", "eyes", "style", "mouth", "blush")


@dataclass(frozen=True)
class AnimePrepareParams:
    """Faces → size×size RGB PNGs split into train and test, with a class label per face."""

    source: str = _c(PROCEDURAL, desc="'procedural' (the drawn stand-in set) or an image folder")
    images: int = _c(1000, lambda v: v >= 10, ">= 10")  # procedural only: how many faces to draw
    size: int = _c(64, lambda v: v == 64, "(the DCGAN is built for 64)")
    labels: Optional[str] = _c(None, desc="folder source: null (none), 'folders' or a CSV path")
    attribute: str = _c("hair", desc="the label column that defines the classes")
    min_size: int = _c(32, *POS)
    non_rgb: str = _c("convert", choices=("convert", "reject"))
    test: float = _c(0.2, *FRACTION)
    seed: int = _c(0, *NONNEG)
    supersample: int = _c(4, lambda v: 1 <= v <= 8, "in [1, 8]")


@dataclass(frozen=True)
class GanVariant:
    """One GAN variant; as fields of the section, the defaults that ``variants.<name>`` override.

    Defaults are seed 003's (512 maps at 4×4 = ngf 64, Adam 2e-4); the demo params.yaml is smaller."""

    conditional: bool = _c(False)
    loss: str = _c("bce", choices=LOSSES)
    latent_dim: int = _c(100, *POS)
    ngf: int = _c(64, *POS)
    ndf: int = _c(64, *POS)
    lr_G: float = _c(0.0002, *POS)
    lr_D: float = _c(0.0002, *POS)
    beta1: float = _c(0.5, *UNIT)
    gp_weight: float = _c(10.0, *NONNEG)
    d_steps: int = _c(1, *POS)
    ema: float = _c(0.0, *EMA_DECAY)
    upsampling: str = _c("deconv", choices=("deconv", "resize"))  # G's ×2 steps (pipeline.anime.nets)
    d_norm: str = _c("auto", choices=D_NORMS)  # auto: the seed's (batch; none for the wgan-gp critic)
    augment: list[str] = augment_policies(IMAGE_AUGMENTS)
    mode_seeking: float = _c(0.0, *NONNEG)  # > 0: MSGAN's mode-seeking term in G's loss, this weight


@dataclass(frozen=True)
class AnimeTrainGanParams(GanVariant, GanSection):
    """64×64 DCGANs on the training faces; ``variants.<name>`` override the GanVariant fields per variant
    (seed 003: batch 256)."""

    key: ClassVar[str] = "anime_train_gan"
    variant_cls: ClassVar[type] = GanVariant

    run: list[str] = variant_names("dcgan")
    variants: dict[str, dict] = variant_overrides("dcgan")
    epochs: int = _c(50, *POS)
    batch_size: int = _c(256, lambda v: v >= 2, ">= 2")
    grid_every: int = _c(1, *POS)
    samples_per_class: int = _c(100, lambda v: v >= 2, ">= 2")
    seeds: list[int] = _c([0], lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                          "(non-empty, distinct, >= 0)")
    device: str = _c("auto", choices=DEVICES)


@dataclass(frozen=True)
class AnimeClassifyParams:
    """Attribute classifier on real faces; detector, classifier, feature distance and MS-SSIM per variant."""

    epochs: int = _c(10, *POS)
    batch_size: int = _c(64, lambda v: v >= 2, ">= 2")
    lr: float = _c(1e-3, *POS)
    width: int = _c(16, *POS)
    detector_upscale: int = _c(2, lambda v: 1 <= v <= 8, "in [1, 8]")
    detector_images: int = _c(200, *POS)
    ms_ssim_pairs: int = _c(300, *POS)
    kid_subsets: int = _c(50, *POS)
    kid_subset_size: int = _c(100, lambda v: v >= 2, ">= 2")
    plot_examples: int = _c(8, *POS)
    seed: int = _c(0, *NONNEG)
    device: str = _c("auto", choices=DEVICES)


SECTIONS: dict[str, type] = {
    "anime_prepare": AnimePrepareParams,
    "anime_train_gan": AnimeTrainGanParams,
    "anime_classify": AnimeClassifyParams,
}


def check(sections: dict[str, Any]) -> None:
    """Cross-key checks: every variant in ``run`` exists and validates; conditional variants need labels."""
    gan, prep = sections["anime_train_gan"], sections["anime_prepare"]
    for name, v in gan.run_variants().items():
        if v.conditional and prep.source != PROCEDURAL and prep.labels is None:
            raise PipelineError(f"anime_train_gan.variants.{name}.conditional: needs class labels, but "
                                "anime_prepare.labels is null (use 'folders' or a CSV path)")
    if prep.source == PROCEDURAL:
        if prep.labels is not None:
            raise PipelineError("anime_prepare.labels: the procedural set has its own labels; set it to null")
        if prep.attribute not in ATTRIBUTES:
            raise PipelineError(f"anime_prepare.attribute: unknown attribute {prep.attribute!r} of the procedural "
                                f"set (known: {', '.join(ATTRIBUTES)})")
