"""Stage ``video_train_gan@<variant>``: train one spatiotemporal GAN variant (from scratch, or inflated from
a 2D frame GAN trained first), then draw ``samples`` clips and latent interpolation clips from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import cli
from pipeline.io.images import save_rgb
from pipeline.stage import execute_train_gan, parse_paths, parse_seed
from pipeline.train.gan_outputs import train_metrics, writing_variant
from pipeline.video.data import read_prepared
from pipeline.video.gan import generate, interpolate, sample_labels, save_generator, train
from pipeline.video.params import VideoTrainGanParams
from pipeline.video.plots import clips_gif, interpolation_gif, strip


def run(p: VideoTrainGanParams, name: str, seed: int, prepared: Path, out: Path, plots: Path | None = None,
        on_epoch=None, on_pretrain=None) -> dict[str, float]:
    """Train variant ``name`` from training seed ``seed``; write out/model.pt, history.json, samples.npz
    (uint8 clips x, their classes y when conditional), samples.gif, interpolation.gif, samples.png."""
    v = p.variant(name)
    meta, sets = read_prepared(prepared, ("train",))
    k = len(meta["classes"])
    g, histories = train(p, v, sets["train"].x, sets["train"].y, k, seed, on_epoch, on_pretrain)
    clips = generate(g, v.latent_dim, p.samples, seed + 1, k)
    interp = interpolate(g, v.latent_dim, p.interpolations, p.interpolation_steps, seed + 2, k)
    with writing_variant(out, plots, histories, histories["video"]) as tmp:
        save_generator(tmp / "model.pt", g, v, clips.shape[1:], k if v.conditional else 0)
        np.savez(tmp / "samples.npz", x=clips, y=sample_labels(len(clips), k if v.conditional else 0).numpy())
        clips_gif(tmp / "samples.gif", clips[:16], fps=meta["fps"])
        interpolation_gif(tmp / "interpolation.gif", interp, fps=meta["fps"])
        save_rgb(tmp / "samples.png", strip(clips[:6]))
    return train_metrics(histories["video"], len(clips), pretrain_epochs=len(histories.get("pretrain_2d", [])))


@cli
def main() -> None:
    args = parse_paths("prepared", "out", "plots", extra=("name", "seed"))
    seed = parse_seed(args.seed)

    def body(params, log):
        metrics = run(params.video_train_gan, args.name, seed, args.prepared, args.out, args.plots,
                      lambda epoch, means: log.metrics(means, step=epoch),
                      lambda epoch, means: log.metrics({f"pretrain_2d.{k}": x for k, x in means.items()}, step=epoch))
        for f in ("samples.png", "samples.gif", "interpolation.gif"):
            log.file(args.out / f)
        return metrics

    execute_train_gan("video", args.name, seed, body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
