"""Stage ``sensor_train_gan@<variant>-<seed>``: train one 1D GAN variant with one seed on the training
windows, then draw ``samples_per_class`` windows per class (in sensor units) for the classify stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import cli
from pipeline.sensor.data import MinMaxScaler, band_limit, read_prepared
from pipeline.sensor.gan import generate, save_generator, train
from pipeline.sensor.params import SensorTrainGanParams
from pipeline.sensor.plots import traces
from pipeline.stage import execute_train_gan, parse_paths, parse_seed
from pipeline.train.gan_outputs import train_metrics, writing_variant


def run(p: SensorTrainGanParams, name: str, seed: int, prepared: Path, out: Path, plots: Path | None = None,
        on_epoch=None) -> dict[str, float]:
    """Write out/model.pt (generator), history.json and samples.npz (x in sensor units, y = condition)."""
    v = p.variant(name)
    meta, sets = read_prepared(prepared, ("train",))
    scaler = MinMaxScaler(meta["minmax"]["lo"], meta["minmax"]["hi"])
    k = len(meta["classes"])
    band = band_limit(meta) if v.g_band != "none" else 0.0
    g, history = train(p, v, seed, sets["train"], scaler, k, on_epoch=on_epoch, band=band)
    x, y = generate(g, v, k, p.samples_per_class, scaler, seed + 1)
    with writing_variant(out, plots, history) as tmp:
        save_generator(tmp / "model.pt", g, v, x.shape[1], x.shape[2], k, band)
        np.savez_compressed(tmp / "samples.npz", x=x.astype(np.float32), y=y, conditional=v.conditional)
    return train_metrics(history, len(x))


@cli
def main() -> None:
    args = parse_paths("prepared", "out", "plots", extra=("name", "seed"))
    seed = parse_seed(args.seed)

    def body(params, log):
        metrics = run(params.sensor_train_gan, args.name, seed, args.prepared, args.out, args.plots,
                      lambda epoch, means: log.metrics(means, step=epoch))
        meta, sets = read_prepared(args.prepared, ("train",))
        with np.load(args.out / "samples.npz") as z:
            log.image("real_vs_generated.png", traces({"real": (sets["train"].x, sets["train"].y),
                                                        args.name: (z["x"], z["y"])}, meta["classes"],
                                                       meta["channels"], rate_hz=meta["rate_hz"]))
        return metrics

    execute_train_gan("sensor", args.name, seed, body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
