"""The detection pipeline's params sections: render, real, crop, refine, reinsert, training_sets,
train_detector, evaluate, report (one frozen dataclass each), and the typed refiner configs.

Importing this module is cheap (no torch): ``python -m pipeline.params`` validates with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from pipeline.errors import PipelineError
from pipeline.fields import NONNEG, POS, UNIT, _c

# ---------------------------------------------------------------- render
@dataclass(frozen=True)
class CameraParams:
    """Top-down equisolid fisheye (Blender PANO / FISHEYE_EQUISOLID)."""

    width: int = _c(448, *POS)
    height: int = _c(336, *POS)
    lens_mm: float = _c(2.4, *POS)
    sensor_mm: float = _c(12.0, *POS)
    fov_deg: float = _c(180.0, lambda v: 0 < v <= 360, "in (0, 360]")
    mount_m: float = _c(3.0, *POS)


@dataclass(frozen=True)
class SceneParams:
    """Sampling ranges after seed Tables 7.1/7.2."""

    room_m: tuple[float, float] = _c((7.0, 5.5), lambda v: min(v) > 0, "> 0")
    desks: tuple[int, int] = _c((2, 4), lambda v: 0 <= v[0] <= v[1], "min <= max, >= 0")
    sitting: tuple[int, int] = _c((1, 5), lambda v: 0 <= v[0] <= v[1], "min <= max, >= 0")
    standing: tuple[int, int] = _c((0, 4), lambda v: 0 <= v[0] <= v[1], "min <= max, >= 0")
    melanin: tuple[float, float] = _c((0.2, 1.0), lambda v: 0 <= v[0] <= v[1] <= 1, "0 <= min <= max <= 1")
    saturation_std: float = _c(0.3, *NONNEG)
    value_mean: float = _c(0.5, *UNIT)
    value_std: float = _c(0.2, *NONNEG)
    lights: tuple[int, int] = _c((1, 3), lambda v: 1 <= v[0] <= v[1], "1 <= min <= max")
    motion_blur_m: float = _c(0.02, *NONNEG)


@dataclass(frozen=True)
class RenderParams:
    seed: int = _c(0, *NONNEG)
    images: int = _c(32, *POS)
    shards: int = _c(2, *POS)
    samples: int = _c(16, *POS)
    denoise: bool = _c(True)
    device: str = _c("auto", choices=("auto", "cpu", "gpu"))
    stall_timeout_s: float = _c(600.0, *POS)  # a worker silent this long (no image done) is killed and named
    camera: CameraParams = field(default_factory=CameraParams)
    scene: SceneParams = field(default_factory=SceneParams)
    backgrounds: Optional[str] = _c(None)
    assets: Optional[str] = _c(None)


# ---------------------------------------------------------------- real
@dataclass(frozen=True)
class CameraModelParams:
    """The demo_real stand-in's camera model, applied after rendering."""

    noise_std: float = _c(0.03, *NONNEG)
    vignetting: float = _c(0.35, *UNIT)
    blur_sigma: float = _c(0.7, *NONNEG)
    colour_cast: tuple[float, float, float] = _c((1.06, 1.0, 0.9), lambda v: min(v) > 0, "> 0")
    jpeg_quality: int = _c(70, lambda v: 1 <= v <= 100, "in [1, 100]")


@dataclass(frozen=True)
class RealParams:
    """The real domain: ``demo_real`` (a rendered stand-in) or a folder with <split>.json and images/."""

    source: str = _c("demo_real")
    seed: int = _c(1000, *NONNEG)
    train: int = _c(16, *POS)
    val: int = _c(8, *POS)
    test: int = _c(8, *POS)
    camera_model: CameraModelParams = field(default_factory=CameraModelParams)


# ---------------------------------------------------------------- crop / refine / reinsert
@dataclass(frozen=True)
class CropFilterParams:
    """Optional predicates; a crop failing any is skipped (the seed filtered real crops)."""

    min_person_px: int = _c(0, *NONNEG)
    max_centre_dist: float = _c(1.0, *POS)
    min_head_box_px: int = _c(0, *NONNEG)


@dataclass(frozen=True)
class CropParams:
    size: int = _c(128, lambda v: v >= 8 and v % 4 == 0, ">= 8 and a multiple of 4")
    offset: float = _c(0.3, lambda v: -1 <= v <= 1, "in [-1, 1]")
    filter: CropFilterParams = field(default_factory=CropFilterParams)


@dataclass(frozen=True)
class RefineParams:
    """Refiner training (shared by all configs) plus the named configs of seed Table 3.2."""

    run: list[str] = _c(["identity"], lambda v: len(v) > 0, "(non-empty)")
    epochs: int = _c(200, *POS)
    steps_per_epoch: Optional[int] = _c(None, *POS)
    batch_size: int = _c(1, *POS)
    lr: float = _c(2e-4, *POS)
    beta1: float = _c(0.5, *UNIT)
    pool_size: int = _c(50, *NONNEG)
    seed: int = _c(0, *NONNEG)
    ngf: int = _c(64, *POS)
    n_blocks: int = _c(9, *POS)
    ndf: int = _c(64, *POS)
    device: str = _c("auto", choices=("auto", "cuda", "mps", "cpu"))
    compile: bool = _c(False)
    vgg_weights: Optional[str] = _c(None)
    refine_batch: int = _c(16, *POS)
    configs: dict[str, dict] = _c({"identity": {"arch": "identity"}})

    def spec(self, name: str) -> "RefinerSpec":
        """Config ``name`` merged over the section's network defaults, validated; errors name
        ``refine.configs.<name>.<key>``, and an unknown name lists the known ones."""
        if name not in self.configs:
            raise PipelineError(f"refine.run: unknown config {name!r} (known: {', '.join(sorted(self.configs))})")
        return parse_spec(name, self.configs[name], {"ngf": self.ngf, "n_blocks": self.n_blocks, "ndf": self.ndf})


@dataclass(frozen=True)
class ReinsertParams:
    feather: int = _c(4, *NONNEG)
    mode: str = _c("residual", choices=("residual", "paste"))


# ---------------------------------------------------------------- detector / evaluate / report
@dataclass(frozen=True)
class DetectorLossParams:
    """SqueezeDet loss weights (Wu et al. 2017: bbox 5, conf+ 75, conf- 100, class 1)."""

    bbox: float = _c(5.0, *NONNEG)
    conf_pos: float = _c(75.0, *NONNEG)
    conf_neg: float = _c(100.0, *NONNEG)
    cls: float = _c(1.0, *NONNEG)
    # squared: sigmoid(conf) regressed to the box's IoU (the paper); bce: cross-entropy towards 1 / 0
    conf: str = _c("squared", choices=("squared", "bce"))
    # negatives whose best IoU with a gt box is at least this are left out of the confidence loss
    # (neither object nor background); 0 trains every non-positive anchor towards "no object" (the paper)
    ignore_iou: float = _c(0.0, lambda v: 0 <= v < 1, "in [0, 1)")


@dataclass(frozen=True)
class TrainingSetsParams:
    """Every ``train_detector.sets`` entry written as a folder of its own (its detectors depend on it alone)."""

    link: str = _c("hardlink", choices=("hardlink", "copy"))  # hardlink: no second copy on disk (copy as fallback)


@dataclass(frozen=True)
class TrainDetectorParams:
    """SqueezeDet training per training set (seed Algorithm 3); ``sets`` use the grammar of
    ``pipeline.detection.params`` (``S``, ``R``, a refiner config, ``+``-joined, ``<k>x`` prefix, ``A>B``
    pretrain on A then fine-tune on B)."""

    sets: list[str] = _c(["S", "R"], lambda v: len(v) > 0 and len(set(v)) == len(v), "(non-empty, no repeats)")
    target: str = _c("head", choices=("head", "person"))
    input_size: tuple[int, int] = _c((336, 448), lambda v: min(v) > 0 and v[0] % 16 == 0 and v[1] % 16 == 0,
                                     "(height, width), positive multiples of 16")
    patch: Optional[int] = _c(None, lambda v: v is None or (v > 0 and v % 16 == 0), "(a positive multiple of 16, "
                              "or null for whole images)")
    patches_per_image: int = _c(8, *POS)  # windows drawn from each image per epoch when patch is set
    photometric: bool = _c(False)  # a random camera (white balance, brightness, ..., noise) on windows of rendered images
    width: float = _c(1.0, *POS)
    stride: int = _c(16, choices=(8, 16))
    batch_norm: bool = _c(False)
    anchors: int = _c(9, *POS)
    epochs: int = _c(20, *POS)
    pretrain_epochs: int = _c(10, *POS)  # the first phase of an 'A>B' set (epochs: its fine-tune phase)
    batch_size: int = _c(8, *POS)
    optimizer: str = _c("adam", choices=("adam", "sgd"))
    lr: float = _c(1e-3, *POS)
    momentum: float = _c(0.9, *UNIT)
    weight_decay: float = _c(1e-4, *NONNEG)
    schedule: str = _c("cosine", choices=("constant", "cosine"))
    grad_clip: Optional[float] = _c(10.0, *POS)
    dropout: float = _c(0.0, lambda v: 0 <= v < 1, "in [0, 1)")
    augment: bool = _c(True)
    pretrained: bool = _c(False)
    backbone_weights: Optional[str] = _c(None)
    nms_iou: float = _c(0.4, *UNIT)
    top_k: int = _c(100, *POS)
    loss: DetectorLossParams = field(default_factory=DetectorLossParams)
    device: str = _c("auto", choices=("auto", "cuda", "mps", "cpu"))
    workers: int = _c(0, *NONNEG)


@dataclass(frozen=True)
class EvaluateParams:
    """Seeds per training set, the matching IoU, distances between crop sets, label preservation."""

    seeds: list[int] = _c([0], lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                          "(non-empty, distinct, >= 0)")
    iou: float = _c(0.5, lambda v: 0 < v < 1, "in (0, 1)")
    ci: float = _c(0.95, lambda v: 0 < v < 1, "in (0, 1)")
    inception_weights: Optional[str] = _c(None)
    kid_subsets: int = _c(100, *POS)
    kid_subset_size: int = _c(1000, lambda v: v >= 2, ">= 2")
    batch_size: int = _c(32, *POS)
    device: str = _c("auto", choices=("auto", "cuda", "mps", "cpu"))


@dataclass(frozen=True)
class ReportParams:
    detections: int = _c(4, *POS)
    pca_points: int = _c(400, lambda v: v >= 3, ">= 3")


# ---------------------------------------------------------------- refiner configs (refine.configs.<name>)
# Loss terms by name; pipeline.detection.refiner.losses implements each (a unit test keeps the two equal).
LOSS_TERMS = ("gan", "cyc_pixel", "id_pixel", "cyc_feat", "id_feat", "cyc_disc_feat", "mean_feat")
VGG_TERMS = frozenset({"cyc_feat", "id_feat", "mean_feat"})

# The keys each architecture takes (besides ``arch``).
ARCH_KEYS = {"identity": {"arch"},
             "cyclegan": {"arch", "skip", "losses", "vgg_layers", "ngf", "n_blocks", "ndf"},
             "aggan": {"arch", "skip", "losses", "vgg_layers", "ngf", "n_blocks", "ndf", "switch", "tau"}}


@dataclass(frozen=True)
class RefinerSpec:
    """A validated refiner config: ``refine.configs.<name>`` merged over the section's defaults."""

    name: str
    arch: str
    skip: bool = False
    losses: dict[str, float] = field(default_factory=lambda: {"gan": 1.0, "cyc_pixel": 10.0})
    vgg_layers: tuple[str, ...] = ("pool2", "pool5")
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    switch: int = 30
    tau: float = 0.1

    @property
    def needs_vgg(self) -> bool:
        return any(self.losses.get(k, 0) > 0 for k in VGG_TERMS)


def check_losses(name: str, weights: Any) -> dict[str, float]:
    """Validate a config's loss weights; unknown terms list the known ones."""
    if not isinstance(weights, dict):
        raise PipelineError(f"refine.configs.{name}.losses: expected a mapping of loss term to weight, got {weights!r}")
    out = {}
    for term, w in weights.items():
        if term not in LOSS_TERMS:
            raise PipelineError(f"refine.configs.{name}.losses.{term}: unknown loss term "
                                f"(known: {', '.join(LOSS_TERMS)})")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise PipelineError(f"refine.configs.{name}.losses.{term}: expected float >= 0, got {w!r}")
        out[term] = float(w)
    out.setdefault("gan", 1.0)
    return out


def parse_spec(name: str, cfg: Any, defaults: dict[str, Any]) -> RefinerSpec:
    """Check a config's keys and types; errors name ``refine.configs.<name>.<key>``."""
    if not isinstance(cfg, dict):
        raise PipelineError(f"refine.configs.{name}: expected a mapping with an 'arch' key, got {cfg!r}")
    arch = cfg.get("arch")
    if arch not in ARCH_KEYS:
        raise PipelineError(f"refine.configs.{name}.arch: unknown arch {arch!r} (known: {', '.join(ARCH_KEYS)})")
    unknown = sorted(set(cfg) - ARCH_KEYS[arch])
    if unknown:
        raise PipelineError(f"refine.configs.{name}.{unknown[0]}: unknown key for arch {arch} "
                            f"(known: {', '.join(sorted(ARCH_KEYS[arch]))})")
    merged = {**{k: v for k, v in defaults.items() if k in ARCH_KEYS[arch]}, **cfg}
    for key, typ in (("skip", bool), ("ngf", int), ("n_blocks", int), ("ndf", int), ("switch", int), ("tau", float)):
        v = merged.get(key)
        if v is not None and not (isinstance(v, typ) or (typ is float and isinstance(v, int))) or (
                typ is int and isinstance(v, bool)):
            raise PipelineError(f"refine.configs.{name}.{key}: expected {typ.__name__}, got {v!r}")
    losses = check_losses(name, merged.pop("losses", {"cyc_pixel": 10.0}))
    if "vgg_layers" in merged:
        layers = merged["vgg_layers"]
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise PipelineError(f"refine.configs.{name}.vgg_layers: expected a list of layer names, got {layers!r}")
        merged["vgg_layers"] = tuple(layers)
    return RefinerSpec(name=name, losses=losses, **merged)


# ---------------------------------------------------------------- training set names (train_detector.sets)
# A set name is one or more parts joined by ``+``; each part is ``R`` (the real training split R_train), ``S``
# (the synthetic set) or a refiner config name (its refined set), optionally prefixed by ``<k>x`` to take
# round(k * |R_train|) images of that part (seed Table 4.6). Examples: ``S``, ``R``, ``R+0.5xC_CP_S``.
# ``A>B`` pretrains on set A (``train_detector.pretrain_epochs``) and then fine-tunes on set B
# (``train_detector.epochs``), e.g. ``S>R`` or ``C_CP_S>R`` (beyond the seed).
REAL, SYNTHETIC = "R", "S"
THEN = ">"
_PART = re.compile(r"^(?:(\d+(?:\.\d+)?)x)?([A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class Part:
    source: str  # "R", "S" or a refiner config name
    ratio: float | None = None  # k: round(k * |R_train|) images; None: the whole set


def parse_phases(name: str, refiners: Sequence[str], key: str = "train_detector.sets") -> tuple[tuple[Part, ...], ...]:
    """The training phases of a set name: one (``R+S``) or two (``S>R``: pretrain, then fine-tune)."""
    phases = name.split(THEN)
    if len(phases) > 2:
        raise PipelineError(f"{key}: {name!r}: at most one '{THEN}' (pretrain{THEN}fine-tune, e.g. S{THEN}R)")
    return tuple(_parse_parts(name, phase, refiners, key) for phase in phases)


def parse_set(name: str, refiners: Sequence[str], key: str = "train_detector.sets") -> tuple[Part, ...]:
    """Parse a set name; errors name ``key``, the set and what is allowed. For ``A>B`` the parts of both
    phases, each source once (its first occurrence)."""
    parts: dict[str, Part] = {}
    for phase in parse_phases(name, refiners, key):
        for part in phase:
            parts.setdefault(part.source, part)
    return tuple(parts.values())


def _parse_parts(name: str, phase: str, refiners: Sequence[str], key: str) -> tuple[Part, ...]:
    parts, seen = [], set()
    for raw in phase.split("+"):
        m = _PART.match(raw)
        if not m:
            raise PipelineError(f"{key}: {name!r}: part {raw!r} is not '[<k>x]NAME' (e.g. R+0.5xC_CP_S)")
        ratio, source = (float(m.group(1)) if m.group(1) else None), m.group(2)
        if source not in (REAL, SYNTHETIC, *refiners):
            raise PipelineError(f"{key}: {name!r}: unknown part {source!r} (known: R, S and the refine.run configs "
                                f"{', '.join(refiners)})")
        if source == REAL and ratio is not None:
            raise PipelineError(f"{key}: {name!r}: R takes no '<k>x' ratio (k counts multiples of |R_train|)")
        if ratio is not None and ratio <= 0:
            raise PipelineError(f"{key}: {name!r}: ratio in {raw!r} must be > 0")
        if source in seen:
            raise PipelineError(f"{key}: {name!r}: {source} appears twice")
        seen.add(source)
        parts.append(Part(source, ratio))
    return tuple(parts)


def refiners_of(parts: Sequence[Part]) -> list[str]:
    return [p.source for p in parts if p.source not in (REAL, SYNTHETIC)]


SECTIONS: dict[str, type] = {
    "render": RenderParams,
    "real": RealParams,
    "crop": CropParams,
    "refine": RefineParams,
    "reinsert": ReinsertParams,
    "training_sets": TrainingSetsParams,
    "train_detector": TrainDetectorParams,
    "evaluate": EvaluateParams,
    "report": ReportParams,
}


def check(sections: dict[str, Any]) -> None:
    """Checks that span sections: every refiner config parses, refine.run names configs, detector sets name
    refine.run configs and include R."""
    refine = sections["refine"]
    for name in refine.configs:
        refine.spec(name)
    for name in refine.run:
        if name not in refine.configs:
            raise PipelineError(f"refine.run: unknown config {name!r} (known: {', '.join(sorted(refine.configs))})")
        if name in (REAL, SYNTHETIC):
            raise PipelineError(f"refine.configs.{name}: the names R and S are reserved for the real and "
                                f"synthetic sets")
    sets = sections["train_detector"].sets
    for name in sets:
        parse_set(name, refine.run)
    t = sections["train_detector"]
    if t.pretrained and (t.width != 1.0 or t.batch_norm):
        raise PipelineError("train_detector.pretrained: ImageNet SqueezeNet weights need width 1.0 and "
                            f"batch_norm false (got width {t.width}, batch_norm {t.batch_norm})")
    if REAL not in sets:
        raise PipelineError("train_detector.sets: must include 'R' (the evaluate stage uses the R_train detectors "
                            "for label preservation and as the feature space of crop distances)")
