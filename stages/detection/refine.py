"""Stage ``refine@<config>``: train the named refiner config on synthetic vs real crops, then refine
every synthetic crop with it (batched). ``identity`` skips training."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.io.images import grid, load_rgb
from pipeline.detection.crops.manifest import read_manifest
from pipeline.detection.params import RefineParams
from pipeline.detection.refiner.apply import refine_folder
from pipeline.stage import execute, parse_paths
from pipeline.detection.refiner.families import build_vgg, device_of, train_refiner


def run(p: RefineParams, name: str, crops: Path, out: Path, checkpoints: Path | None = None,
        on_epoch=None) -> dict[str, float]:
    """Write ``out``/crops, manifest.csv, model.pt (the X->Y translator) and history.json."""
    spec = p.spec(name)
    vgg = build_vgg(spec, p.vgg_weights)
    xm, ym = read_manifest(crops / "synthetic"), read_manifest(crops / "real_train")
    start = time.perf_counter()
    model, history = train_refiner(p, spec, crops / "synthetic", xm, crops / "real_train", ym,
                                   checkpoints, on_epoch, vgg)
    train_seconds = time.perf_counter() - start  # this process's share when it resumed a checkpoint
    with atomic_dir(out) as tmp:
        n = refine_folder(model, crops / "synthetic", xm, tmp, p.refine_batch, device_of(p))
        torch.save({"spec": dataclasses.asdict(spec), "state_dict": model.cpu().state_dict()}, tmp / "model.pt")
        write_json_atomic(tmp / "history.json", history)
    last = history[-1] if history else {}
    return {"refined": float(n), "epochs": float(len(history)), "train_seconds": train_seconds,
            **{k: float(v) for k, v in last.items()}}


@cli
def main() -> None:
    args = parse_paths("crops", "out", "checkpoints", extra=("name",))

    def body(params, log):
        def on_epoch(epoch, means, picture):
            log.metrics(means, step=epoch)
            log.image(f"samples_epoch{epoch:03d}.png", picture)

        metrics = run(params.refine, args.name, args.crops, args.out, args.checkpoints, on_epoch)
        files = list(read_manifest(args.out)["crop_file"].head(8))
        pairs = [load_rgb(d / f) for f in files for d in (args.crops / "synthetic", args.out)]
        log.image("synthetic_to_refined.png", grid(pairs, cols=4))
        return metrics

    execute("detection", f"refine@{args.name}", lambda p: {**dataclasses.asdict(p.refine), "configs": None,
                                                          "config": dataclasses.asdict(p.refine.spec(args.name))},
            body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
