"""Headline metrics: the few numbers per stage that ``dvc metrics show`` prints and ``dvc metrics diff`` compares.

Every stage writes its full, nested results to its ``--metrics`` file (a DVC output that later stages,
reports and MLflow read). ``--headline PATH`` also writes a flat file of a few numbers taken from it,
named from one shared vocabulary, so that the DVC metrics view is one table of about 25 columns rather
than one column per nested key:

| column | meaning | stages |
|---|---|---|
| images, people | images written, people annotated | render, real, reinsert (images) |
| crops, real_crops | crops of S and of R_train; reinsert: crops pasted back | crop, reinsert |
| loss_G, loss_D | last epoch's losses | refine, <domain>_train_gan |
| train_seconds | training wall time | refine, train_detector |
| sets | training sets | training_sets, report |
| val_f1, test_f1, test_ap50 | detector F1 (validation, test) and AP50 on the real test split | train_detector; evaluate: the best set's mean over seeds |
| best | the best set (evaluate) or the best GAN variant not flagged collapsed (domain reports) | evaluate, domain reports |
| best_refined_f1 | the best refined set's mean test F1 | report |
| classes, train, test | class count and split sizes (windows, clips, images or faces) | domain prepare stages |
| accuracy | the domain's real-data classifier on its test split | audio_features, domain reports |
| generated_accuracy, discriminative, diversity_ratio | sensor: the best variant's conditional accuracy, MiniRocket real-vs-generated accuracy, within-class diversity / real | sensor_classify |
| detection_rate, ms_ssim, conditional_accuracy | anime: animeface's rate, pairwise MS-SSIM, attribute accuracy on own samples | anime_classify |
| is_ratio, ms_ssim, temporal_ratio | video/audio: IS / real IS; video: frame MS-SSIM, temporal change / real | video_classify, audio_evaluate |
| collapsed | how many variants the collapse alarm flags | domain reports |

A variant's value is its mean over seeds. Nothing here computes a metric: it only picks from the results.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

Metrics = Mapping[str, Any]


def _mean(leaf: Any) -> Any:
    """A ``mean_ci`` leaf's mean, a plain number as is."""
    return leaf.get("mean") if isinstance(leaf, Mapping) else leaf


def _best(m: Metrics, key: Callable[[Mapping[str, Any]], Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The variant with the highest ``key`` among those the collapse alarm did not flag (all, if all are)."""
    variants = m.get("variants") or {}
    collapsed = m.get("collapsed") or {}
    pool = [v for v in variants if not collapsed.get(v)] or list(variants)
    scored = [(key(variants[v]), v) for v in pool]
    scored = [(s, v) for s, v in scored if isinstance(s, (int, float))]
    if not scored:
        return None, {}
    name = max(scored, key=lambda sv: sv[0])[1]
    return name, variants[name]


def _collapsed(m: Metrics) -> int:
    return sum(bool(f) for f in (m.get("collapsed") or {}).values())


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def _pick(*keys: str, **renamed: str) -> Callable[[Metrics], dict[str, Any]]:
    """Flat metrics: ``keys`` as they are, ``renamed`` as ``column=key``."""
    def pick(m: Metrics) -> dict[str, Any]:
        return {**{k: m.get(k) for k in keys}, **{c: m.get(k) for c, k in renamed.items()}}
    return pick


def _sum(m: Metrics, suffix: str) -> float:
    return sum(v for k, v in m.items() if k.endswith(suffix) and isinstance(v, (int, float)))


def _prepare(count: str) -> Callable[[Metrics], dict[str, Any]]:
    """A domain prepare stage: classes and split sizes (``train_<count>``, ``test_<count>``)."""
    return lambda m: {"classes": m.get("classes"), "train": m.get(f"train_{count}"), "test": m.get(f"test_{count}")}


def evaluate(m: Metrics) -> dict[str, Any]:
    sets = m.get("sets") or {}
    if not sets:
        return {"best": None, "test_f1": None, "test_ap50": None}
    name = max(sets, key=lambda s: sets[s].get("mean") if sets[s].get("mean") is not None else -1.0)
    return {"best": name, "test_f1": sets[name].get("mean"), "test_ap50": sets[name].get("ap50_mean")}


def sensor_classify(m: Metrics) -> dict[str, Any]:
    name, v = _best(m, lambda v: _mean(v.get("generated_accuracy")))
    return {"best": name, "generated_accuracy": _mean(v.get("generated_accuracy")),
            "discriminative": _mean((v.get("discriminative") or {}).get("accuracy")),
            "diversity_ratio": _mean(v.get("diversity_ratio")),
            "accuracy": (m.get("real") or {}).get("accuracy"), "collapsed": _collapsed(m)}


def anime_classify(m: Metrics) -> dict[str, Any]:
    name, v = _best(m, lambda v: _mean((v.get("detector") or {}).get("detection_rate")))
    return {"best": name, "detection_rate": _mean((v.get("detector") or {}).get("detection_rate")),
            "ms_ssim": _mean(v.get("ms_ssim")), "conditional_accuracy": _mean(v.get("accuracy_by_condition")),
            "accuracy": (m.get("real") or {}).get("accuracy"), "collapsed": _collapsed(m)}


def video_classify(m: Metrics) -> dict[str, Any]:
    real = m.get("real") or {}
    name, v = _best(m, lambda v: _mean(v.get("is_c3d")))
    return {"best": name, "is_ratio": _ratio(_mean(v.get("is_c3d")), real.get("is_c3d")),
            "ms_ssim": _mean(v.get("ms_ssim")),
            "temporal_ratio": _ratio(_mean(v.get("temporal_change")), real.get("temporal_change")),
            "accuracy": real.get("accuracy"), "collapsed": _collapsed(m)}


def audio_evaluate(m: Metrics) -> dict[str, Any]:
    name, v = _best(m, lambda v: _mean(v.get("is_ratio")))
    return {"best": name, "is_ratio": _mean(v.get("is_ratio")),
            "accuracy": (m.get("classifier") or {}).get("test_accuracy"), "collapsed": _collapsed(m)}


_GAN = _pick("loss_G", "loss_D")

HEADLINES: dict[str, Callable[[Metrics], dict[str, Any]]] = {
    "render": _pick("images", "people"),
    "real": lambda m: {"images": _sum(m, "_images"), "people": _sum(m, "_people")},
    "crop": _pick(crops="synthetic_crops", real_crops="real_train_crops"),
    "refine": _pick("loss_G", "loss_D", "train_seconds"),
    "reinsert": _pick("images", crops="reinserted"),
    "training_sets": _pick("sets"),
    "train_detector": _pick("val_f1", "test_f1", "test_ap50", "train_seconds"),
    "evaluate": evaluate,
    "report": _pick("sets", best_refined_f1="best_refined_f1_mean"),
    "sensor_prepare": _prepare("windows"),
    "sensor_train_gan": _GAN,
    "sensor_classify": sensor_classify,
    "audio_synthesize": _prepare("clips"),
    "audio_features": _pick(accuracy="embedder_test_accuracy"),
    "audio_train_gan": _GAN,
    "audio_evaluate": audio_evaluate,
    "anime_prepare": _prepare("images"),
    "anime_train_gan": _GAN,
    "anime_classify": anime_classify,
    "video_prepare": _prepare("clips"),
    "video_train_gan": _GAN,
    "video_classify": video_classify,
}


def headline(stage: str, metrics: Metrics) -> dict[str, Any]:
    """The headline of a stage's metrics; ``stage`` may carry its ``@item`` (``train_detector@R-0``)."""
    return HEADLINES[stage.split("@", 1)[0]](metrics)
