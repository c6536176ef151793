"""Stage ``training_sets``: write every ``train_detector.sets`` entry as a folder of its own, so that each
``train_detector@<set>-<seed>`` depends on its set's data only and a refiner change retrains only the
detectors whose set contains that refiner."""

from __future__ import annotations

from pathlib import Path

from pipeline.detection.detector.sets import REAL, SYNTHETIC, materialise, parse_phases, parse_set, refiners_of
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir
from pipeline.detection.params import TrainingSetsParams
from pipeline.stage import execute, parse_paths


def run(p: TrainingSetsParams, sets: list[str], refiners: list[str], synthetic: Path, real_train: Path,
        reinserted: Path, out: Path) -> dict[str, float]:
    """Write ``out/<set>/`` for every set (see ``materialise``); return the images per set."""
    counts = {}
    with atomic_dir(out) as tmp:
        for name in sets:
            roots = {REAL: real_train, SYNTHETIC: synthetic,
                     **{c: reinserted / c for c in refiners_of(parse_set(name, refiners))}}
            counts[name] = float(materialise(name, parse_phases(name, refiners), roots, tmp / name, p.link))
    return {"sets": float(len(sets)), "images": counts}


@cli
def main() -> None:
    args = parse_paths("synthetic", "real_train", "reinserted", "out")
    execute("detection", "training_sets", "training_sets",
            lambda params, log: run(params.training_sets, params.train_detector.sets, params.refine.run,
                                    args.synthetic, args.real_train, args.reinserted, args.out), args.metrics,
            args.headline)


if __name__ == "__main__":
    main()
