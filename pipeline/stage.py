"""Shared plumbing for stage ``main()`` functions: argv paths, params, MLflow, DVC metrics."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import PipelineError
from pipeline.io.atomic import finite, write_json_atomic
from pipeline.params import Params, load_params
from pipeline.tracking import METRICS_TAG, StageRun, file_md5, mlflow_key, stage_run


def stage_parser(*names: str, extra: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """``--name PATH`` arguments (paths live only in dvc.yaml), string options in ``extra``, and every stage's
    ``--metrics`` (the full results) and ``--headline`` (the few numbers ``dvc metrics show`` prints)."""
    ap = argparse.ArgumentParser()
    for n in names:
        ap.add_argument(f"--{n}", type=Path, required=True)
    for n in extra:
        ap.add_argument(f"--{n}", required=True)
    ap.add_argument("--metrics", type=Path, default=None)
    ap.add_argument("--headline", type=Path, default=None,
                    help="also write the stage's few headline numbers here (pipeline.headline), flat")
    return ap


def parse_paths(*names: str, extra: tuple[str, ...] = ()) -> argparse.Namespace:
    """Parse a stage's command line (``stage_parser``)."""
    return stage_parser(*names, extra=extra).parse_args()


def numeric_leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a nested metrics dict under dotted keys (MLflow metrics are flat); None/NaN dropped.

    Keys go through ``mlflow_key`` (MLflow's allowed characters).
    """
    out: dict[str, float] = {}
    for k, v in tree.items():
        k = mlflow_key(k)
        if isinstance(v, dict):
            out.update(numeric_leaves(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
            out[f"{prefix}{k}"] = float(v)
    return out


def execute(pipeline: str, stage: str, section: str | Callable[[Params], Any],
            body: Callable[[Params, StageRun], dict[str, Any]], metrics_path: Path | None,
            headline_path: Path | None = None) -> dict[str, Any]:
    """Validate all params, open the MLflow child run ``stage``, run ``body``, log and write its metrics.

    ``section`` names the params section logged with the run, or picks the object to log. The full metrics
    go to ``metrics_path``; ``headline_path`` gets the few numbers ``dvc metrics show`` prints
    (``pipeline.headline``).
    """
    params = load_params()
    logged = section(params) if callable(section) else params.sections[section]
    with stage_run(pipeline, stage, params, logged) as log:
        metrics = body(params, log)
        log.metrics(numeric_leaves(metrics))
        if metrics_path is not None:
            write_json_atomic(metrics_path, metrics)
            # DVC restores this file with the stage's outputs; its hash finds the run behind a workspace result
            log.tag(METRICS_TAG, file_md5(metrics_path))
        if headline_path is not None:
            from pipeline.headline import headline

            write_json_atomic(headline_path, headline(stage, metrics))
    print(json.dumps(finite(metrics)))
    return metrics


def run_name(variant: str, seed: int) -> str:
    """The name of one training run of a GAN variant or detector set: ``<name>-<seed>`` (its DVC stage is
    ``<domain>_train_gan@<variant>-<seed>`` or ``train_detector@<set>-<seed>``, its folder
    ``<gans>/<variant>-<seed>`` or ``data/detectors/<set>-<seed>``)."""
    return f"{variant}-{seed}"


def parse_seed(text: str) -> int:
    """``--seed`` of a ``<domain>_train_gan`` run: an int >= 0 (one of the section's ``seeds``)."""
    if not text.isdigit():
        raise PipelineError(f"--seed: expected an int >= 0, got {text!r}")
    return int(text)


def execute_train_gan(pipeline: str, name: str, seed: int, body: Callable[[Params, StageRun], dict[str, Any]],
                      metrics_path: Path | None, headline_path: Path | None = None) -> dict[str, Any]:
    """``execute`` for the stage ``<pipeline>_train_gan@<name>-<seed>``: the MLflow run has that name and logs
    its section with the other variants and seeds left out, this variant resolved (the section's own values
    overridden by ``variants.<name>``) and this seed."""
    section = f"{pipeline}_train_gan"

    def logged(params: Params) -> dict[str, Any]:
        p = getattr(params, section)
        return {**dataclasses.asdict(p), "variants": None, "variant": dataclasses.asdict(p.variant(name)),
                "seeds": None, "seed": seed}

    return execute(pipeline, f"{section}@{run_name(name, seed)}", logged, body, metrics_path, headline_path)


def tag_collapsed(log: StageRun, flags: Any) -> None:
    """MLflow tags from a report's ``collapsed`` metrics entry ({variant: bool}, the collapse alarm):
    ``collapsed`` lists the flagged variants (or "none") and ``collapsed.<variant>`` is "true"/"false",
    so a search can leave collapsed generators out of a ranking."""
    if not isinstance(flags, dict):
        return
    log.tag("collapsed", ",".join(sorted(v for v, f in flags.items() if f)) or "none")
    for v, f in flags.items():
        log.tag(f"collapsed.{mlflow_key(v)}", "true" if f else "false")


def report_stage(pipeline: str, stage: str, inputs: tuple[str, ...], run: Callable[..., dict[str, Any]],
                 pictures: tuple[str, ...] = ("*.png",)) -> dict[str, Any]:
    """``main()`` of a domain's evaluation stage (``<pipeline>_classify`` or ``_evaluate``).

    Parses ``--<input> PATH`` for each of ``inputs`` plus ``--out`` and ``--metrics``, then calls
    ``run(params.<stage>, gan.run, gan.seeds, *input paths, out)`` with ``gan`` = ``params.<pipeline>_train_gan``
    (every variant × seed run is scored), which writes ``out/report.md`` and pictures; the pictures matching
    ``pictures`` and the report go to MLflow, and the returned ``collapsed`` flags become MLflow tags.
    """
    args = parse_paths(*inputs, "out")

    def body(params: Params, log: StageRun) -> dict[str, Any]:
        gan = getattr(params, f"{pipeline}_train_gan")
        metrics = run(getattr(params, stage), gan.run, gan.seeds, *(getattr(args, n) for n in inputs), args.out)
        tag_collapsed(log, metrics.get("collapsed"))
        for f in [f for pattern in pictures for f in sorted(args.out.glob(pattern))] + [args.out / "report.md"]:
            log.file(f)
        return metrics

    return execute(pipeline, stage, stage, body, args.metrics, args.headline)
