"""Stage ``anime_train_gan@<variant>-<seed>``: train one 64×64 GAN variant with one seed on the training
faces, then draw ``samples_per_class`` faces per class for the classify stage, the final fixed-latent
grid, the progress strip (the same latents across epochs) and latent interpolation strips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pipeline.anime.data import read_prepared
from pipeline.anime.gan import fingerprint, generate, interpolation, progress_strip, save_generator, train
from pipeline.anime.params import AnimeTrainGanParams
from pipeline.errors import cli
from pipeline.io.images import save_rgb
from pipeline.stage import execute_train_gan, parse_paths, parse_seed
from pipeline.train.gan_outputs import train_metrics, writing_variant


def run(p: AnimeTrainGanParams, name: str, seed: int, prepared: Path, out: Path, checkpoints: Path | None = None,
        plots: Path | None = None, on_epoch=None) -> dict[str, float]:
    """Write out/model.pt, history.json, samples.npz (x uint8, y = condition), samples.png, progress.png and
    interpolation.png; checkpoints (per params fingerprint) are removed once the outputs are in place."""
    v = p.variant(name)
    meta, sets = read_prepared(prepared, ("train",))
    k = len(meta["classes"])
    ckpt = checkpoints / fingerprint(p, v, prepared, seed) if checkpoints is not None else None
    g, history, grids = train(p, v, sets["train"], k, seed, ckpt, on_epoch)
    x, y = generate(g, v, k, p.samples_per_class, seed + 1)
    with writing_variant(out, plots, history) as tmp:
        save_generator(tmp / "model.pt", g, v, k)
        np.savez_compressed(tmp / "samples.npz", x=x, y=y, conditional=v.conditional)
        save_rgb(tmp / "samples.png", grids[max(grids)])
        save_rgb(tmp / "progress.png", progress_strip(grids))
        save_rgb(tmp / "interpolation.png", interpolation(g, v, k, seed=seed + 2))
    if ckpt is not None:
        shutil.rmtree(ckpt, ignore_errors=True)
    return train_metrics(history, len(x))


@cli
def main() -> None:
    args = parse_paths("prepared", "out", "checkpoints", "plots", extra=("name", "seed"))
    seed = parse_seed(args.seed)

    def body(params, log):
        def on_epoch(epoch, means, picture):
            log.metrics(means, step=epoch)
            if picture is not None:
                log.image(f"grid_epoch{epoch:04d}.png", picture)

        metrics = run(params.anime_train_gan, args.name, seed, args.prepared, args.out, args.checkpoints,
                      args.plots, on_epoch)
        for f in ("samples.png", "progress.png", "interpolation.png"):
            log.file(args.out / f)
        return metrics

    execute_train_gan("anime", args.name, seed, body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
