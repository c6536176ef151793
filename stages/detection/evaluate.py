"""Stage ``evaluate``: mean and CI of every training set's test metrics over seeds, distances between
crop sets (cS, cR_train, every cS+), label preservation of every refiner, F1 vs distance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.errors import cli
from pipeline.detection.evaluation import (FEATURE_SPACE, comparisons, crop_images, distances, embed, f1_vs_distance,
                                 label_preservation, read_run_metrics, refiner_summaries, run_key, summarise)
from pipeline.io.atomic import atomic_dir, finite, write_json_atomic
from pipeline.metrics.distances import inception_features, resolve_inception_weights
from pipeline.params import Params
from pipeline.stage import execute, parse_paths
from pipeline.tracking import summary_run
from pipeline.detection.detector.training import load_detector
from pipeline.train.device import pick_device

NO_INCEPTION = ("FID/KID not computed: no FID Inception weights (evaluate.inception_weights or "
                "$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth); distances are reported as "
                f"fd_{FEATURE_SPACE} / kid_{FEATURE_SPACE} in the R_train detector's feature space instead")


def run(params: Params, crops: Path, refined: Path, synthetic: Path, reinserted: Path, detectors: Path,
        runs_dir: Path, out: Path) -> dict:
    """Write ``out``/summary.json and features.npz; return the summary (also the DVC metrics)."""
    e, t = params.evaluate, params.train_detector
    inception = (str(resolve_inception_weights(e.inception_weights, "evaluate.inception_weights"))
                 if e.inception_weights else _hub_inception())
    runs = read_run_metrics(runs_dir, t.sets, e.seeds)
    summary = summarise(runs, t.sets, e.seeds, e.ci)
    setup = pick_device(e.device)
    r_detectors = [load_detector(detectors / run_key("R", seed) / "model.pt") for seed in e.seeds]
    feature_model = r_detectors[0][0]
    sets = {"S": crops / "synthetic", "R": crops / "real_train", **{c: refined / c for c in params.refine.run}}
    images = {name: crop_images(folder) for name, folder in sets.items()}
    feats = {name: embed(feature_model, im, setup, e.batch_size) for name, im in images.items()}
    inc_feats = ({name: inception_features(im, inception, batch_size=e.batch_size, device=str(setup.device))
                  for name, im in tqdm(images.items(), desc="inception features", unit="set")} if inception else None)
    dist = distances(feats, ("R", "S"), e.kid_subsets, e.kid_subset_size, inc_feats)
    preserved = label_preservation([(m, meta["threshold"]) for m, meta in r_detectors],
                                   {"S": synthetic, **{c: reinserted / c for c in params.refine.run}},
                                   t.target, e.iou, setup)
    key = "fid" if inception else f"fd_{FEATURE_SPACE}"
    result = finite({"sets": summary, "comparisons": comparisons(runs, t.sets, e.seeds, e.ci, params.refine.run), "distances": dist, "distance_key": key, "feature_space": FEATURE_SPACE,
                     "inception": inception is not None, "label_preservation": preserved,
                     "f1_vs_distance": f1_vs_distance(summary, dist, key), "seeds": list(e.seeds), "ci": e.ci})
    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / "summary.json", result)
        np.savez_compressed(tmp / "features.npz", **feats)
    return result


def _hub_inception() -> str | None:
    """The Inception weights from torch hub's cache if present; otherwise a notice and None."""
    from pipeline.metrics.distances import InceptionWeightsMissing

    try:
        return str(resolve_inception_weights(None))
    except InceptionWeightsMissing:
        print(f"notice: {NO_INCEPTION}", file=sys.stderr)
        return None


@cli
def main() -> None:
    args = parse_paths("crops", "refined", "synthetic", "reinserted", "detectors", "runs", "refiners", "out")

    def body(params, log):
        result = run(params, args.crops, args.refined, args.synthetic, args.reinserted, args.detectors,
                     args.runs, args.out)
        if not result["inception"]:
            log.tag("fid_notice", NO_INCEPTION)
        log.file(args.out / "summary.json")
        log_refiner_configs(params, result, args.refiners, log.run_id)
        return flat_metrics(result)

    execute("detection", "evaluate", "evaluate", body, args.metrics, args.headline)


def log_refiner_configs(params: Params, result: dict, refiners: Path, evaluate_run: str) -> None:
    """One MLflow run per refiner config (``refiner_config@<name>``): its loss weights, skip and arch as params,
    its sets' test F1 over seeds, recall drop, distance, final losses and time as metrics; tagged with the
    ``evaluate`` run it summarises."""
    trained = {n: json.loads((refiners / f"{n}.json").read_text()) for n in params.refine.run
               if (refiners / f"{n}.json").is_file()}
    for name, (run_params, metrics) in refiner_summaries(params.refine, result, trained).items():
        summary_run("detection", f"refiner_config@{name}", params, run_params, metrics,
                    tags={"kind": "refiner_config", "refiner": name, "feature_space": result["feature_space"],
                          "evaluate_run_id": evaluate_run})


def flat_metrics(result: dict) -> dict:
    """The numbers worth a glance in ``dvc metrics show`` and MLflow: per set mean test F1/AP50 with CI,
    distances to R_train, recall drops (nested, so DVC shows dotted keys)."""
    key = result["distance_key"]
    out: dict = {"sets": {s: {m: v for m, v in d["test_f1"].items()} | {"ap50_mean": d["test_ap50"]["mean"]}
                          for s, d in result["sets"].items()}}
    out["distance_to_R"] = {s: {key: d["R"][key], "n_a": d["R"]["n_a"], "n_b": d["R"]["n_b"]}
                            for s, d in result["distances"].items() if "R" in d}
    out["recall_drop"] = {s: d["drop"]["mean"] for s, d in result["label_preservation"].items() if "drop" in d}
    return out


if __name__ == "__main__":
    main()
