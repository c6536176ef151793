"""The registry of pipelines: one entry per pipeline (the detection flagship and each GAN domain).

Each entry names its params sections and their cross-section check, its final DVC stage (a flow runs it
and everything upstream), the stages that train networks (sent to the ``gpu`` work pool), and its nightly
schedule. ``pipeline.params``, the Prefect flows and deployments, and the contract tests read it; adding
a domain is its package, its ``stages/<domain>/`` folder, its dvc.yaml and params.yaml entries, and one
line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pipeline.anime import params as anime
from pipeline.audio import params as audio
from pipeline.detection import params as detection
from pipeline.sensor import params as sensor
from pipeline.video import params as video


@dataclass(frozen=True)
class Domain:
    """One pipeline: ``sections`` (params section -> dataclass), ``check`` (cross-section checks, raising
    PipelineError), ``final_stages``, ``gpu_stages`` (base stage names) and ``cron`` (UTC)."""

    name: str
    sections: dict[str, type]
    check: Callable[[dict[str, Any]], None]
    final_stages: tuple[str, ...]
    gpu_stages: frozenset[str]
    cron: str
    summary: str


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain("detection", detection.SECTIONS, detection.check, ("report",),
           frozenset({"refine", "train_detector"}), "0 2 * * *",
           "Render → real → crop → refine → reinsert → train_detector → evaluate → report, via DVC."),
    Domain("sensor", sensor.SECTIONS, sensor.check, ("sensor_classify",),
           frozenset({"sensor_train_gan"}), "0 1 * * *",
           "Windows from real accelerometer recordings, one GAN per variant, the classifier's verdict on each."),
    Domain("audio", audio.SECTIONS, audio.check, ("audio_evaluate",),
           frozenset({"audio_train_gan"}), "0 4 * * *",
           "Spoken digits (eSpeak NG) paired with MNIST, sound features, one GAN per variant, the evaluator's tables."),
    Domain("anime", anime.SECTIONS, anime.check, ("anime_classify",),
           frozenset({"anime_train_gan"}), "0 5 * * *",
           "Faces (the procedural stand-in or a folder), one DCGAN per variant, the anime-face detector's and "
           "the attribute classifier's verdict on each."),
    Domain("video", video.SECTIONS, video.check, ("video_classify",),
           frozenset({"video_train_gan"}), "0 6 * * *",
           "Clips (Moving MNIST or a UCF-101 folder), one spatiotemporal GAN per variant, a video classifier's verdict."),
)}


def gpu_stages() -> frozenset[str]:
    """Every pipeline's network-training stages (base names)."""
    return frozenset().union(*(d.gpu_stages for d in DOMAINS.values()))
