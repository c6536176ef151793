"""params.yaml -> frozen typed sections.

Every section is a frozen dataclass. ``load_params`` validates the whole file before any work:
an unknown key, a missing section or a wrong type raises PipelineError naming the dotted key,
e.g. ``crop.size: expected int > 0, got '128px'``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from pipeline.errors import PipelineError
from pipeline.anime.params import ANIME_SECTIONS, check_anime
from pipeline.audio.params import AUDIO_SECTIONS, check_audio
from pipeline.fields import NONNEG, POS, UNIT, _c, parse_section
from pipeline.sensor.params import SENSOR_SECTIONS, check_sensor
from pipeline.video.params import VIDEO_SECTIONS, check_video

PARAMS_FILE = Path("params.yaml")


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


@dataclass(frozen=True)
class TrainingSetsParams:
    """Every ``train_detector.sets`` entry written as a folder of its own (its detectors depend on it alone)."""

    link: str = _c("hardlink", choices=("hardlink", "copy"))  # hardlink: no second copy on disk (copy as fallback)


@dataclass(frozen=True)
class TrainDetectorParams:
    """SqueezeDet training per training set (seed Algorithm 3); ``sets`` use the grammar of
    ``pipeline.detection_sets`` (``S``, ``R``, a refiner config, ``+``-joined, ``<k>x`` prefix)."""

    sets: list[str] = _c(["S", "R"], lambda v: len(v) > 0 and len(set(v)) == len(v), "(non-empty, no repeats)")
    target: str = _c("head", choices=("head", "person"))
    input_size: tuple[int, int] = _c((336, 448), lambda v: min(v) > 0 and v[0] % 16 == 0 and v[1] % 16 == 0,
                                     "(height, width), positive multiples of 16")
    width: float = _c(1.0, *POS)
    stride: int = _c(16, choices=(8, 16))
    batch_norm: bool = _c(False)
    anchors: int = _c(9, *POS)
    epochs: int = _c(20, *POS)
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
    **SENSOR_SECTIONS,
    **AUDIO_SECTIONS,
    **ANIME_SECTIONS,
    **VIDEO_SECTIONS,
}


DOMAIN_SECTIONS: dict[str, dict[str, type]] = {"sensor": SENSOR_SECTIONS, "audio": AUDIO_SECTIONS,
                                                "anime": ANIME_SECTIONS, "video": VIDEO_SECTIONS}


def pipeline_sections(pipeline: str) -> list[str]:
    """The params sections one pipeline reads: a domain's own sections; ``detection`` the rest."""
    if pipeline in DOMAIN_SECTIONS:
        return list(DOMAIN_SECTIONS[pipeline])
    domain = {name for sections in DOMAIN_SECTIONS.values() for name in sections}
    return [name for name in SECTIONS if name not in domain]


@dataclass(frozen=True)
class Params:
    sections: dict[str, Any]
    raw: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.sections[name]
        except KeyError:
            raise AttributeError(name) from None

    def digest(self, pipeline: str | None = None) -> str:
        """Stable hash of the params file, or of one pipeline's sections only (the MLflow tag ``params_hash``:
        a sensor knob does not change the detection runs' hash)."""
        raw = self.raw if pipeline is None else {k: v for k, v in self.raw.items() if k in pipeline_sections(pipeline)}
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validate every section of a params mapping."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise PipelineError(f"{unknown[0]}: unknown params section in {source} (known: {', '.join(SECTIONS)})")
    sections = {name: parse_section(cls, raw.get(name), name) for name, cls in SECTIONS.items()}
    _check_across(sections)
    return Params(sections=sections, raw=raw)


def _check_across(sections: dict[str, Any]) -> None:
    """Checks that span sections: refine.run names configs, detector sets name refine.run configs."""
    from pipeline.detection_sets import REAL, SYNTHETIC, parse_set

    refine = sections["refine"]
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
    for check in (check_sensor, check_audio, check_anime, check_video):
        check(sections)
    if REAL not in sets:
        raise PipelineError("train_detector.sets: must include 'R' (the evaluate stage uses the R_train detectors "
                            "for label preservation and as the feature space of crop distances)")


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml``; raises PipelineError on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{path}:{where} is not valid YAML") from None
    return parse_params(raw or {}, str(path))


def as_flat_dict(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a params section to dotted keys (for MLflow)."""
    out: dict[str, Any] = {}
    items = dataclasses.asdict(obj).items() if dataclasses.is_dataclass(obj) else obj.items()
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(as_flat_dict(v, key + "."))
        else:
            out[key] = v
    return out
