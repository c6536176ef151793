"""Stage ``report``: the refiner comparison as Markdown + PNGs (tables after seed 4.1-4.6, PCA of crop
features, F1 vs distance, validation curves, mix-ratio curve, detections on test images) and CSVs
for ``dvc plots``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.detection import report as rp
from pipeline.errors import PipelineError, cli
from pipeline.io.atomic import atomic_dir, write_csv_atomic
from pipeline.params import Params
from pipeline.stage import execute, parse_paths, run_name as run_key


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: missing; run the stage that writes it first") from None


def run(params: Params, evaluation: Path, detectors: Path, out: Path) -> dict[str, float]:
    """Write ``out``/report.md, the figures and mix_ratio.csv / f1_vs_distance.csv."""
    s = _load(evaluation / "summary.json")
    refiners, seeds = params.refine.run, s["seeds"]
    feats = dict(np.load(evaluation / "features.npz"))
    histories = {name: [_load(detectors / run_key(name, seed) / "history.json") for seed in seeds]
                 for name in s["sets"]}
    ranked = rp.ranking(s, refiners)
    shown = [rp.REAL] + ([ranked[0][1]] if ranked else []) + ([rp.SYNTHETIC] if rp.SYNTHETIC in s["sets"] else [])
    det_runs = {}
    for name in dict.fromkeys(shown):
        ckpt = detectors / run_key(name, seeds[0])
        det_runs[f"{name} (seed {seeds[0]})"] = (ckpt / "test_predictions.json", _threshold(ckpt))
    with atomic_dir(out) as tmp:
        rp.plot_f1_bars(s, tmp / "test_f1.png")
        rp.plot_pca(feats, tmp / "pca.png", params.report.pca_points)
        rp.plot_f1_vs_distance(s, tmp / "f1_vs_distance.png")
        rp.plot_val_curves(histories, tmp / "val_curves.png")
        rp.plot_mix(s, refiners, tmp / "mix_ratio.png")
        rp.plot_detections(det_runs, tmp / "detections.png", params.report.detections)
        mix = [{"added": c, "k": k, "set": name, "f1_mean": f1["mean"], "f1_lo": f1["lo"], "f1_hi": f1["hi"]}
               for c, pts in rp.mix_series(s, refiners).items() for k, name, f1 in pts]
        write_csv_atomic(tmp / "mix_ratio.csv", mix)
        r = s["f1_vs_distance"]
        write_csv_atomic(tmp / "f1_vs_distance.csv", [{"set": n, "distance": x, "f1_mean": y}
                                                      for n, x, y in zip(r["sets"], r["x"], r["y"])])
        (tmp / "report.md").write_text(markdown(s, refiners))
    best = ranked[0] if ranked else None
    return {"sets": float(len(s["sets"])), "seeds": float(len(seeds)),
            **({"best_refined_f1_mean": float(best[2]["mean"])} if best and best[2]["mean"] is not None else {})}


def _threshold(folder: Path) -> float:
    from pipeline.detection.detector.training import load_detector

    return float(load_detector(folder / "model.pt")[1]["threshold"])


def markdown(s: dict, refiners: list[str]) -> str:
    """The report text; every number comes from ``s`` (the evaluate stage's summary)."""
    n, level = len(s["seeds"]), int(round(100 * s["ci"]))
    ranked = rp.ranking(s, refiners)
    lines = [
        "# Detection: refiner comparison", "",
        f"Every training set was trained with {n} seed(s) ({', '.join(map(str, s['seeds']))}); cells give the mean "
        f"over seeds and the {level}% Student-t interval. Each detector kept the epoch with the best F1 on "
        "R_val, chose its confidence threshold on R_val, and was evaluated once on R_test.", "",
        "![test F1](test_f1.png)", "",
        "## Refiners ranked by mean test F1", "",
        rp.ranking_table(s, refiners), "",
    ]
    if ranked:
        lines += [f"Highest mean: `{ranked[0][1]}` (refiner `{ranked[0][0]}`), test F1 {rp.ci_cell(ranked[0][2])}. "
                  f"{rp.separation(ranked)}", ""]
    if s.get("comparisons"):
        lines += ["## What the intervals separate", "",
                  f"Each row is a difference of mean test F1 between two training sets, with Welch's {level}% "
                  "t-interval over their seeds (scipy `ttest_ind`, unequal variances). A difference counts as "
                  "separated only when its interval excludes 0.", "",
                  rp.comparison_table(s), "", rp.separated_sentence(s), ""]
    lines += ["## Test metrics per training set", "", rp.sets_table(s), "",
              "![validation curves](val_curves.png)", "",
              "## Distances between crop sets", ""]
    if not s["inception"]:
        lines += [f"No FID Inception weights were available, so no FID is reported. `fd_{s['feature_space']}` and "
                  f"`kid_{s['feature_space']}` are the Fréchet distance and KID in the feature space of the detector "
                  "trained on R_train (pooled fire11 features), not FID. Small n biases Fréchet distances upward; "
                  "compare rows with similar n only.", ""]
    r = s["f1_vs_distance"]
    lines += [rp.distance_table(s), "", "![PCA of crop features](pca.png)", "",
              f"Mean test F1 against `{r['distance']}` to cR_train over {r['n']} single-source sets: slope "
              f"{rp.fmt(r['slope'], 4)}, r = {rp.fmt(r['r'], 3)}, p = {rp.fmt(r['p'], 3)}.", "",
              "![F1 vs distance](f1_vs_distance.png)", "",
              "## Label preservation", "",
              "The detectors trained on R_train (every seed, each at its validation threshold) run over the synthetic "
              "images S and every refined set S+; recall is against the synthetic ground truth. A positive drop "
              "means the refiner erased or moved people.", "",
              rp.preservation_table(s), "",
              "## Mix ratio", "", rp.mix_table(s, refiners), "", "![mix ratio](mix_ratio.png)", "",
              "## Detections", "", "![detections](detections.png)", ""]
    return "\n".join(lines)


@cli
def main() -> None:
    args = parse_paths("evaluation", "detectors", "out")

    def body(params, log):
        metrics = run(params, args.evaluation, args.detectors, args.out)
        for f in sorted(args.out.iterdir()):
            log.file(f, "report")
        return metrics

    execute("detection", "report", "report", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
