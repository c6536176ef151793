"""How much the video scorer's test accuracy depends on its training seed, per learning rate and epochs.

    .venv/bin/python bench/video_scorer_seeds.py [--prepared data/video/prepared] [--lr 0.003 0.0003]
                                                  [--epochs 6] [--seeds 4] [--net c3d]

Trains the scorer exactly as `video_classify` does (`fit_classifier`, batch 16, width 8) on the prepared
real training clips, once per (lr, epochs, seed), and prints its accuracy on the real test clips. Needs
`dvc repro video_prepare` first. A wide spread over seeds means the IS/fd of a single run say little.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.video.scorers import build_classifier
from pipeline.train.classifier import fit_classifier, predict_proba
from pipeline.train.pixels import to_unit  # noqa: E402
from pipeline.video.data import read_prepared


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prepared", type=Path, default=Path("data/video/prepared"))
    ap.add_argument("--lr", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4])
    ap.add_argument("--epochs", type=int, nargs="+", default=[6])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--net", default="c3d", choices=["c3d", "r2plus1d"])
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    meta, sets = read_prepared(a.prepared)
    train, test = sets["train"], sets["test"]
    n_classes = len(meta["classes"])
    print(f"{a.net}, {len(train.x)} train / {len(test.x)} test clips, {n_classes} classes")
    print("lr       epochs  test accuracy per seed            min    max")
    for lr in a.lr:
        for epochs in a.epochs:
            accs = []
            for seed in range(a.seeds):
                model = fit_classifier(lambda: build_classifier(a.net, train.x.shape[1], n_classes, a.width),
                                       to_unit(train.x), train.y, epochs, a.batch, lr, seed, "cpu", a.net)
                accs.append(float((predict_proba(model, to_unit(test.x)).argmax(1) == test.y).mean()))
            print(f"{lr:<8g} {epochs:<7d} {' '.join(f'{x:.3f}' for x in accs):<33s} {min(accs):.3f}  {max(accs):.3f}")


if __name__ == "__main__":
    main()
