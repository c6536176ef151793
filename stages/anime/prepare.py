"""Stage ``anime_prepare``: the procedural stand-in faces (or a user image folder) → 64×64 RGB PNGs with a
class label each (hair colour by default), split into train and test, stratified by class."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipeline.anime.data import load_source, read_prepared, split, write_prepared
from pipeline.anime.params import AnimePrepareParams
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.images import grid
from pipeline.stage import execute, parse_paths


def run(p: AnimePrepareParams, out: Path) -> dict[str, float]:
    """Write out/images/{train,test}/*.png, out/labels.csv and out/meta.json."""
    x, names, attrs = load_source(p.source, p.images, p.size, p.labels, p.attribute, p.min_size, p.non_rgb,
                                  p.seed, p.supersample)
    classes = sorted(set(names))
    y = np.array([classes.index(n) for n in names])
    where = split(y, p.test, p.seed)
    meta = {"classes": classes, "attribute": p.attribute if len(classes) > 1 else None, "size": p.size,
            "labelled": p.source == "procedural" or p.labels is not None, "params": dataclasses.asdict(p)}
    with atomic_dir(out) as tmp:
        write_prepared(tmp, x, names, attrs, where, meta)
    metrics: dict[str, float] = {"images": float(len(x)), "classes": float(len(classes))}
    for s in ("train", "test"):
        metrics[f"{s}_images"] = float(np.sum(where == s))
        for i, c in enumerate(classes):
            metrics[f"{s}_{c}"] = float(np.sum((where == s) & (y == i)))
    return metrics


@cli
def main() -> None:
    args = parse_paths("out")

    def body(params, log):
        metrics = run(params.anime_prepare, args.out)
        _, sets = read_prepared(args.out, ("train",))
        log.image("train_faces.png", grid(list(sets["train"].x[:64]), cols=8))
        log.file(args.out / "labels.csv")
        return metrics

    execute("anime", "anime_prepare", "anime_prepare", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
