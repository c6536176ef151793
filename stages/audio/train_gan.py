"""Stage ``audio_train_gan@<variant>-<seed>``: train one sound-conditioned image GAN (variant ``--name``, seed
``--seed``) on the training pairs, then draw ``samples_per_clip`` images for every test clip (voices unseen in
training) for the evaluate stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio.data import read_pairs
from pipeline.audio.features import conditions, read_features
from pipeline.audio.gan import generate, save_generator, train
from pipeline.audio.params import AudioTrainGanParams
from pipeline.audio.plots import class_grid
from pipeline.errors import cli
from pipeline.stage import execute_train_gan, parse_paths, parse_seed, run_name
from pipeline.train.gan_outputs import train_metrics, writing_variant


def run(p: AudioTrainGanParams, name: str, pairs: Path, features: Path, out: Path, plots: Path | None = None,
        on_epoch=None, seed: int = 0) -> dict[str, float]:
    """Write out/model.pt (generator), history.json and samples.npz (uint8 images at the real images' size,
    the class of the clip behind each, the clip's index)."""
    v = p.variant(name)
    meta, sets = read_pairs(pairs)
    fmeta, feats = read_features(features)
    tr, te = sets["train"], sets["test"]
    cond_tr = conditions(fmeta, feats["train"], v.feature, tr.label, features)
    cond_te = conditions(fmeta, feats["test"], v.feature, te.label, features)
    g, history = train(p, v, tr, cond_tr, len(meta["classes"]), meta["pairing"] == "class", seed, on_epoch=on_epoch)
    images = generate(g, v, cond_te, p.samples_per_clip, seed + 1, size=meta["image_size"])
    with writing_variant(out, plots, history) as tmp:
        save_generator(tmp / "model.pt", g, v, tr.images.shape[1], cond_tr.shape[1])
        np.savez_compressed(tmp / "samples.npz", images=images, label=np.repeat(te.label, p.samples_per_clip),
                            clip=np.repeat(np.arange(len(te.label)), p.samples_per_clip))
    return train_metrics(history, len(images))


@cli
def main() -> None:
    args = parse_paths("pairs", "features", "out", "plots", extra=("name", "seed"))
    seed = parse_seed(args.seed)

    def body(params, log):
        metrics = run(params.audio_train_gan, args.name, args.pairs, args.features, args.out, args.plots,
                      lambda epoch, means: log.metrics(means, step=epoch), seed)
        meta, sets = read_pairs(args.pairs, ("test",))
        te = sets["test"]
        with np.load(args.out / "samples.npz") as z:
            log.image("test_clips_to_images.png", class_grid(z["images"], z["label"], meta["classes"], 8,
                                                             f"{run_name(args.name, seed)}: test clip's class → generated",
                                                             te.paired_images(), te.label))
        return metrics

    execute_train_gan("audio", args.name, seed, body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
