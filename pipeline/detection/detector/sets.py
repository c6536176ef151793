"""Detector training sets: the images and boxes a set name stands for (the names' grammar is in
``pipeline.detection.params``), materialised as folders of their own and read back as samples (the torch
datasets and loaders that feed them to a detector are in ``pipeline.detection.detector.data``)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.detection.params import (REAL, SYNTHETIC, THEN, Part,  # noqa: F401 (the set grammar)
                                       parse_phases, parse_set, refiners_of)
from pipeline.errors import PipelineError
from pipeline.io.atomic import write_json_atomic
from pipeline.io.coco import read_coco


@dataclass(frozen=True)
class Sample:
    """One image and its target boxes (M,4) xyxy in source pixels."""

    image: Path
    boxes: np.ndarray
    width: int
    height: int
    rendered: bool = False  # a synthetic or refined image (its camera is randomised by ``photometric``)


def load_samples(root: Path, target: str = "head") -> list[Sample]:
    """Every image of ``root/coco.json`` with its head (or person) boxes as xyxy."""
    coco = read_coco(root / "coco.json", image_root=root, allow_empty=False)
    by_image: dict[int, list[list[float]]] = {im.id: [] for im in coco.images}
    for a in coco.annotations:
        x, y, w, h = a.head_bbox if target == "head" else a.bbox
        by_image[a.image_id].append([x, y, x + w, y + h])
    return [Sample(root / im.file_name, np.asarray(by_image[im.id], dtype=np.float32).reshape(-1, 4),
                   im.width, im.height) for im in coco.images]


def compose(parts: Sequence[Part], roots: dict[str, Path], target: str, seed: int,
            n_real: int | None = None) -> list[Sample]:
    """The samples of a training set; ``roots`` maps each part's source to its dataset folder.

    A ``<k>x`` part draws round(k * ``n_real``) images without replacement (seeded), capped at the
    size of that part's set; ``n_real`` defaults to the size of ``roots["R"]``.
    """
    loaded = {src: load_samples(roots[src], target) for src in dict.fromkeys(p.source for p in parts)}
    if n_real is None and any(p.ratio is not None for p in parts):
        n_real = len(loaded[REAL]) if REAL in loaded else len(load_samples(roots[REAL], target))
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for part in parts:
        samples = loaded[part.source]
        if part.source != REAL:
            samples = [dataclasses.replace(s, rendered=True) for s in samples]
        if part.ratio is not None:
            n = min(len(samples), int(round(part.ratio * n_real)))
            samples = [samples[i] for i in sorted(rng.choice(len(samples), size=n, replace=False))]
        out.extend(samples)
    return out


SET_FILE = "set.json"


def materialise(name: str, phases: Sequence[Sequence[Part]], roots: dict[str, Path], out: Path,
                link: str = "hardlink") -> int:
    """Write training set ``name`` as a folder of its own: ``out/<source>/`` (coco.json + the images it
    names, hard-linked or copied) per source of any phase, and ``out/set.json`` (the phases' parts and
    ratios, and |R_train| when a ``<k>x`` part needs it). A detector that depends on this folder alone
    reruns only when its own data changes. Returns the number of images written.
    """
    n = 0
    parts = [p for phase in phases for p in phase]
    for src in dict.fromkeys(p.source for p in parts):
        coco = read_coco(roots[src] / "coco.json", image_root=roots[src], allow_empty=False)  # validates
        for im in coco.images:
            dst = out / src / im.file_name
            dst.parent.mkdir(parents=True, exist_ok=True)
            _place(roots[src] / im.file_name, dst, link)
        raw = json.loads((roots[src] / "coco.json").read_text())  # as written, boxes unrounded
        for im in raw["images"]:
            im.pop("mask_file", None)  # detectors read boxes, not masks
        write_json_atomic(out / src / "coco.json", raw)
        n += len(coco.images)
    ratios = any(p.ratio is not None for p in parts)
    n_real = len(read_coco(roots[REAL] / "coco.json").images) if ratios else None
    write_json_atomic(out / SET_FILE, {"name": name, "phases": [[{"source": p.source, "ratio": p.ratio} for p in phase]
                                                                for phase in phases], "n_real": n_real})
    return n


def _place(src: Path, dst: Path, link: str) -> None:
    if link == "hardlink":
        try:
            os.link(src, dst)
            return
        except OSError:  # another filesystem, or links not supported: copy instead
            pass
    shutil.copyfile(src, dst)


def load_phases(folder: Path, target: str, seed: int) -> list[list[Sample]]:
    """The samples of each training phase of a set written by ``materialise`` (one phase, or pretrain and
    fine-tune for ``A>B``); ``<k>x`` parts are drawn with ``seed``."""
    try:
        meta = json.loads((folder / SET_FILE).read_text())
        phases = [[Part(p["source"], p["ratio"]) for p in phase] for phase in meta["phases"]]
    except FileNotFoundError:
        raise PipelineError(f"{folder / SET_FILE}: missing; run the training_sets stage first") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise PipelineError(f"{folder / SET_FILE}: not a training-set description (phases, n_real)") from None
    return [compose(phase, {p.source: folder / p.source for p in phase}, target, seed, meta.get("n_real"))
            for phase in phases]


def load_set(folder: Path, target: str, seed: int) -> list[Sample]:
    """The samples of a one-phase training set written by ``materialise``."""
    phases = load_phases(folder, target, seed)
    if len(phases) != 1:
        raise PipelineError(f"{folder / SET_FILE}: a pretrain{THEN}fine-tune set has two phases; read it with "
                            "load_phases")
    return phases[0]
