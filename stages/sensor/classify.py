"""Stage ``sensor_classify``: the activity classifier on real data, and every GAN variant measured by it
(generated accuracy, TSTR vs TRTR with our CNN and aeon's MiniRocket, spectrum distance, discriminative
score). Writes the table and pictures to the report folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.io.images import save_rgb
from pipeline.sensor.data import ZScaler, read_prepared
from pipeline.sensor.evaluation import Generated, evaluate, table
from pipeline.sensor.params import SensorClassifyParams
from pipeline.sensor.plots import traces
from pipeline.stage import report_stage
from pipeline.train.gan_outputs import load_histories, load_samples
from pipeline.viz import loss_curves


def run(p: SensorClassifyParams, variants: list[str], prepared: Path, gans: Path, out: Path) -> dict:
    """Write out/report.md, out/metrics.json and the pictures; returns the metrics."""
    meta, sets = read_prepared(prepared, ("train", "test"))
    zs = ZScaler(meta["zscore"]["mean"], meta["zscore"]["std"])
    generated = load_samples(gans, variants, "sensor",
                             lambda z: Generated(z["x"].astype(np.float64), z["y"], bool(z["conditional"])))
    metrics = evaluate(p, sets["train"], sets["test"], zs, meta["classes"], meta["rate_hz"], generated)
    histories = load_histories(gans, variants)
    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / "metrics.json", metrics)
        (tmp / "report.md").write_text(
            "# Sensor domain: real vs generated accelerometer windows\n\n"
            f"Classes: {', '.join(meta['classes'])}; channels: {', '.join(meta['channels'])}; "
            f"{meta['window']} steps at {meta['rate_hz']:g} Hz. Test windows come from recordings the "
            "classifiers and GANs never saw. TSTR needs labelled (conditional) windows.\n\n" + table(metrics) + "\n")
        for name, gen in generated.items():
            save_rgb(tmp / f"traces_{name}.png", traces(
                {"real test": (sets["test"].x, sets["test"].y), name: (gen.x, gen.y)}, meta["classes"],
                meta["channels"], p.plot_examples, meta["rate_hz"]))
        save_rgb(tmp / "losses.png", loss_curves(histories))
    return metrics


@cli
def main() -> None:
    report_stage("sensor", "sensor_classify", ("prepared", "gans"), run)


if __name__ == "__main__":
    main()
