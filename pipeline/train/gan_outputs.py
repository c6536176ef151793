"""A GAN variant's output folder ``<gans>/<name>/``: what every ``<domain>_train_gan@<name>`` stage writes
(model.pt, history.json, samples.npz, pictures), its metrics, and how the domain's evaluation stage reads
the folders of all variants back."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

from pipeline.errors import PipelineError
from pipeline.io.atomic import atomic_dir, write_csv_atomic, write_json_atomic
from pipeline.stage import run_name

T = TypeVar("T")


def seed_runs(variants: list[str], seeds: list[int]) -> dict[str, tuple[str, int]]:
    """Every run of ``variants`` × ``seeds`` in that order: run name -> (variant, seed)."""
    return {run_name(v, s): (v, s) for v in variants for s in seeds}


@contextlib.contextmanager
def writing_variant(out: Path, plots: Path | None, history: Any,
                    losses: list[dict[str, float]] | None = None) -> Iterator[Path]:
    """Yield the temp folder that replaces ``out`` once the block is done, holding ``history`` as
    history.json; the stage writes the generator, samples and pictures into it. Then the per-epoch
    ``losses`` (default: ``history`` itself) go to the ``plots`` CSV, one row per epoch."""
    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / "history.json", history)
        yield tmp
    if plots is not None:
        rows = history if losses is None else losses
        write_csv_atomic(plots, [{"epoch": i + 1, **h} for i, h in enumerate(rows)])


def train_metrics(losses: list[dict[str, float]], samples: int, **counts: float) -> dict[str, float]:
    """A train_gan stage's metrics: epochs trained, the stage's own ``counts``, samples drawn and the last
    epoch's mean losses."""
    last = losses[-1] if losses else {}
    return {"epochs": float(len(losses)), **{k: float(v) for k, v in counts.items()}, "samples": float(samples),
            **{k: float(v) for k, v in last.items()}}


def variant_files(gans: Path, name: str, pipeline: str, files: tuple[str, ...]) -> list[Path]:
    """``gans/<name>/<file>`` for each of ``files``; a missing one stops the stage, naming the run that
    writes it."""
    paths = [gans / name / f for f in files]
    for f in paths:
        if not f.is_file():
            raise PipelineError(f"{f}: not found (run {pipeline}_train_gan@{name})")
    return paths


def load_samples(gans: Path, names: list[str], pipeline: str, read: Callable[[Any], T]) -> dict[str, T]:
    """Every variant's samples.npz, turned by ``read`` (given the open archive) into what the stage scores."""
    out = {}
    for name in names:
        (f,) = variant_files(gans, name, pipeline, ("samples.npz",))
        with np.load(f) as z:
            out[name] = read(z)
    return out


def load_histories(gans: Path, names: list[str]) -> dict[str, Any]:
    """Every variant's history.json (the per-epoch mean losses)."""
    return {n: json.loads((gans / n / "history.json").read_text()) for n in names}
