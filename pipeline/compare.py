"""Refiner comparison from MLflow: one row per detector training set, from the logged runs.

    python -m pipeline.compare                  # latest run of every detector stage
    python -m pipeline.compare --parent RUN_ID  # only the children of one pipeline run (flow or dvc repro)
    python -m pipeline.compare --url            # the MLflow compare view of those runs

Reads ``mlflow.search_runs`` (through ``pipeline.tracking``): the ``train_detector@<set>-<seed>`` runs give
test F1 / AP50 over seeds, the ``refine@<config>`` runs the refiner's final losses and time, the latest
``evaluate`` run the crop distance to R_train and the recall drop of each refined set.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from pipeline.errors import PipelineError, cli
from pipeline.tracking import compare_url, search_runs

COLUMNS = ("set", "seeds", "test_f1_mean", "test_f1_std", "test_ap50_mean", "val_f1_mean",
           "distance_to_R", "recall_drop", "refine_loss_G", "refine_minutes")


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


def refiner_table(pipeline: str = "detection", stages: list[str] | None = None,
                  parent: str | None = None) -> list[dict[str, Any]]:
    """Rows (dicts) sorted by mean test F1; ``stages`` limits to detector stage prefixes, ``parent`` to one run."""
    df = search_runs(pipeline, f"tags.mlflow.parentRunId = '{parent}'" if parent else "")
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


def run_ids(pipeline: str = "detection", parent: str | None = None) -> list[str]:
    df = search_runs(pipeline, f"tags.mlflow.parentRunId = '{parent}'" if parent else "")
    return list(_latest(df, "train_detector@")["run_id"])


def markdown(rows: list[dict[str, Any]]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in COLUMNS] for r in rows]
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(out + ["| " + " | ".join(c) + " |" for c in cells])


@cli
def main() -> None:
    ap = argparse.ArgumentParser(description="Print the refiner comparison from MLflow runs.")
    ap.add_argument("--experiment", default="detection")
    ap.add_argument("--parent", default=None, help="only runs under this MLflow parent run")
    ap.add_argument("--url", action="store_true", help="print the MLflow compare-view URL instead")
    ap.add_argument("--ui", default="http://127.0.0.1:5000", help="where `mlflow ui` listens")
    args = ap.parse_args()
    if args.url:
        print(compare_url(args.experiment, run_ids(args.experiment, args.parent), args.ui))
        return
    rows = refiner_table(args.experiment, parent=args.parent)
    if not rows:
        raise PipelineError(f"MLflow experiment {args.experiment!r}: no train_detector runs"
                            + (f" under parent {args.parent}" if args.parent else "")
                            + " (run `make demo` or a flow first; MLFLOW_TRACKING_URI picks the store)")
    print(markdown(rows))


if __name__ == "__main__":
    main()
