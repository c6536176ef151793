"""Refiner comparison from MLflow: which refiner config, with which loss weights, gives the best detector.

    python -m pipeline.detection.compare                  # the runs behind the workspace's current results
    python -m pipeline.detection.compare --exp NAME       # the runs of one DVC experiment (a flow run's --exp-name)
    python -m pipeline.detection.compare --parent RUN_ID  # the children of one pipeline run (flow or dvc repro)
    python -m pipeline.detection.compare --url            # MLflow's compare view of the refiner-config runs

Reads ``mlflow.search_runs`` (through ``pipeline.tracking``). The ``evaluate`` stage logs one
``refiner_config@<name>`` run per config in ``refine.run``: loss weights, skip and arch as params; test F1
over seeds of every set that contains the config, recall drop, distance to cR_train, final refiner losses
and time as metrics. The first table has one row per config from those runs; the second one row per
training set from the ``train_detector@<set>-<seed>`` runs (with S and R as baselines).

By default the runs are those behind the workspace's results: every stage run tags itself with the md5
of the metrics file it wrote, and DVC restores that file with the stage's outputs, so the files under
``metrics/`` name the runs that produced what the workspace holds now (after ``dvc exp apply``, a
checkout or a flow that put the params back, too), whatever ran later with other params. The first line
of the output says which runs are shown.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError, cli
from pipeline.tracking import METRICS_TAG, compare_url, file_md5, search_runs

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("set", "seeds", "test_f1_mean", "test_f1_std", "test_ap50_mean", "val_f1_mean",
           "distance_to_R", "recall_drop", "refine_loss_G", "refine_minutes")
CONFIG_COLUMNS = ("config", "arch", "skip", "loss weights", "f1_test", "f1_test_ci", "recall_drop", "distance_to_R",
                  "refiner_loss_G", "refiner_minutes")


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else round(v, 4)


def _latest(df, prefix: str):
    """The most recent run of every stage whose name starts with ``prefix``."""
    if df.empty or "tags.stage" not in df:
        return df.iloc[0:0]
    hits = df[df["tags.stage"].fillna("").str.startswith(prefix)]
    return hits.sort_values("start_time", ascending=False).drop_duplicates("tags.stage")


def workspace_runs(pipeline: str = "detection", root: Path | str = ".") -> tuple["pd.DataFrame", str]:
    """The runs behind the results in ``root``/metrics (see the module docstring) and what that is in words."""
    import pandas as pd

    folder = Path(root) / "metrics"
    files = sorted(folder.rglob("*.json"))
    hashes = {file_md5(f) for f in files}
    df = search_runs(pipeline)
    what = f"the results in {folder} (params hash {workspace_hash(pipeline, root)})"
    if df.empty or f"tags.{METRICS_TAG}" not in df:
        return df.iloc[0:0], what
    behind = df[df[f"tags.{METRICS_TAG}"].isin(hashes)]
    evaluate = set(behind.loc[behind["tags.stage"] == "evaluate", "run_id"])
    configs = df.iloc[0:0]
    if evaluate and "tags.evaluate_run_id" in df:
        configs = df[df["tags.evaluate_run_id"].isin(evaluate)]
    return pd.concat([behind, configs]), what


def select_runs(pipeline: str = "detection", root: Path | str = ".", exp: str | None = None,
                parent: str | None = None, everything: bool = False) -> tuple["pd.DataFrame", str]:
    """(runs, what they are in words): of one parent run, one DVC experiment, all runs, or by default the
    runs behind the workspace's results."""
    if parent:
        return search_runs(pipeline, f"tags.mlflow.parentRunId = '{parent}'"), f"children of MLflow run {parent}"
    if exp:
        return search_runs(pipeline, f"tags.dvc_exp_name = '{exp}'"), f"DVC experiment {exp!r}"
    if everything:
        return search_runs(pipeline), "the latest run of every stage"
    return workspace_runs(pipeline, root)


def workspace_hash(pipeline: str = "detection", root: Path | str = ".") -> str:
    """The params hash of ``root``/params.yaml, as the stages tag their runs with it."""
    from pipeline.params import PARAMS_FILE, load_params

    return load_params(Path(root) / PARAMS_FILE).digest(pipeline)


def refiner_table(df: "pd.DataFrame", stages: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows (dicts) per training set from the runs ``df``, sorted by mean test F1; ``stages`` limits to
    detector stage prefixes."""
    det = _latest(df, "train_detector@")
    if stages:
        det = det[det["tags.stage"].apply(lambda s: any(s.startswith(p + "-") for p in stages))]
    if det.empty:
        return []
    refine = {r["tags.stage"].split("@", 1)[1]: r for _, r in _latest(df, "refine@").iterrows()}
    ev = _latest(df, "evaluate")
    ev = ev.iloc[0] if not ev.empty else {}
    rows = []
    for name, g in det.groupby("tags.train_set"):
        dist = [c for c in (f"metrics.distance_to_R.{name}.fid", f"metrics.distance_to_R.{name}.fd_squeezedet_R")
                if c in getattr(ev, "index", ())]
        ref = refine.get(name)
        rows.append({
            "set": name, "seeds": len(g),
            "test_f1_mean": _num(g["metrics.test_f1"].mean()),
            "test_f1_std": _num(g["metrics.test_f1"].std()) if len(g) > 1 else None,
            "test_ap50_mean": _num(g.get("metrics.test_ap50", g["metrics.test_f1"] * math.nan).mean()),
            "val_f1_mean": _num(g.get("metrics.val_f1", g["metrics.test_f1"] * math.nan).mean()),
            "distance_to_R": _num(ev[dist[0]]) if dist else None,
            "recall_drop": _num(ev.get(f"metrics.recall_drop.{name}")) if len(ev) else None,
            "refine_loss_G": _num(ref.get("metrics.loss_G")) if ref is not None else None,
            "refine_minutes": _num(ref.get("metrics.wall_seconds") / 60) if ref is not None
            and _num(ref.get("metrics.wall_seconds")) is not None else None,
        })
    rows.sort(key=lambda r: -(r["test_f1_mean"] or 0.0))
    return rows


def config_table(df: "pd.DataFrame") -> list[dict[str, Any]]:
    """One row per refiner config from the runs ``df``: arch, skip, its non-zero loss weights, test F1 of its
    refined set (mean and t-interval over seeds), recall drop, distance to cR_train, refiner G loss, minutes."""
    rows = []
    for _, r in _latest(df, "refiner_config@").iterrows():
        weights = {k.split(".", 2)[2]: r[k] for k in r.index if k.startswith("params.loss.") and isinstance(r[k], str)}
        lo, hi = _num(r.get("metrics.f1_test_ci_low")), _num(r.get("metrics.f1_test_ci_high"))
        dist = _num(r.get("metrics.fid_to_R"))
        if dist is None:
            dist = _num(r.get("metrics.fd_to_R"))
        secs = _num(r.get("metrics.refiner_train_seconds"))
        rows.append({
            "config": r["tags.refiner"], "arch": r.get("params.arch"), "skip": r.get("params.skip"),
            "loss weights": ", ".join(f"{k}={v}" for k, v in sorted(weights.items()) if float(v) != 0.0),
            "f1_test": _num(r.get("metrics.f1_test")),
            "f1_test_ci": f"[{lo}, {hi}]" if lo is not None and hi is not None else None,
            "recall_drop": _num(r.get("metrics.recall_drop")), "distance_to_R": dist,
            "refiner_loss_G": _num(r.get("metrics.refiner_loss_G")),
            "refiner_minutes": round(secs / 60, 2) if secs is not None else None,
        })
    rows.sort(key=lambda row: -(row["f1_test"] or 0.0))
    return rows


def markdown(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(out + ["| " + " | ".join(c) + " |" for c in cells])


@cli
def main() -> None:
    ap = argparse.ArgumentParser(description="Compare refiner configs from the MLflow runs.")
    ap.add_argument("--experiment", default="detection", help="MLflow experiment (the pipeline)")
    ap.add_argument("--root", type=Path, default=Path("."), help="the DVC workspace whose results are shown")
    pick = ap.add_mutually_exclusive_group()
    pick.add_argument("--exp", default=None, help="the runs of this DVC experiment (flow --exp-name)")
    pick.add_argument("--parent", default=None, help="only runs under this MLflow parent run")
    pick.add_argument("--all", action="store_true", help="the latest run of every stage, whatever its params")
    ap.add_argument("--url", action="store_true", help="print the MLflow compare-view URL of the config runs instead")
    ap.add_argument("--ui", default="http://127.0.0.1:5000", help="where `mlflow ui` listens")
    args = ap.parse_args()
    df, what = select_runs(args.experiment, args.root, args.exp, args.parent, args.all)
    if args.url:
        runs = list(_latest(df, "refiner_config@")["run_id"])
        if not runs:
            raise PipelineError(f"MLflow experiment {args.experiment!r}: no refiner_config runs for {what} "
                                "(the evaluate stage logs them; run `make demo` or a flow first, or pick --exp/--all)")
        print(f"MLflow compare view: {len(runs)} refiner configs, {what}", file=sys.stderr)
        print(compare_url(args.experiment, runs, args.ui))
        return
    configs, sets = config_table(df), refiner_table(df)
    if not configs and not sets:
        raise PipelineError(f"MLflow experiment {args.experiment!r}: no refiner_config or train_detector runs for "
                            f"{what} (run `make demo` or a flow first, or pick --exp/--parent/--all; "
                            "MLFLOW_TRACKING_URI picks the store)")
    print(f"Runs behind {what}." if not (args.exp or args.parent or args.all) else f"Runs of {what}.")
    print("\nRefiner configs (test F1 of each config's refined set over seeds):\n")
    print(markdown(configs, CONFIG_COLUMNS) if configs else "(no refiner_config runs: the evaluate stage logs them)")
    print("\nTraining sets (S and R are the baselines):\n")
    print(markdown(sets) if sets else "(no train_detector runs)")


if __name__ == "__main__":
    main()
