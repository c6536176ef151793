"""Stage ``sensor_classify``: the activity classifier on real data, and every GAN run (variant × seed)
measured by it (generated accuracy, TSTR vs TRTR with our CNN and aeon's MiniRocket, spectrum distance,
discriminative score, within-class diversity and the collapse alarm), summarised per variant over seeds.
Writes the table and pictures to the report folder."""

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
from pipeline.train.gan_outputs import load_histories, load_samples, run_name, seed_runs
from pipeline.viz import loss_curves


def run(p: SensorClassifyParams, variants: list[str], seeds: list[int], prepared: Path, gans: Path,
        out: Path) -> dict:
    """Score every run (variant × seed) in ``gans/<variant>-<seed>``; write out/report.md, out/metrics.json
    and the pictures (traces and losses of each variant's first seed); returns the metrics."""
    meta, sets = read_prepared(prepared, ("train", "test"))
    zs = ZScaler(meta["zscore"]["mean"], meta["zscore"]["std"])
    runs = seed_runs(variants, seeds)
    generated = load_samples(gans, list(runs), "sensor",
                             lambda z: Generated(z["x"].astype(np.float64), z["y"], bool(z["conditional"])))
    metrics = evaluate(p, sets["train"], sets["test"], zs, meta["classes"], meta["rate_hz"], generated, runs)
    first = {v: run_name(v, seeds[0]) for v in variants}
    histories = load_histories(gans, list(first.values()))
    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / "metrics.json", metrics)
        (tmp / "report.md").write_text(
            "# Sensor domain: real vs generated accelerometer windows\n\n"
            f"Classes: {', '.join(meta['classes'])}; channels: {', '.join(meta['channels'])}; "
            f"{meta['window']} steps at {meta['rate_hz']:g} Hz. Test windows come from recordings the "
            "classifiers and GANs never saw. TSTR needs labelled (conditional) windows. "
            f"Each variant: mean ± 95 % t-interval over seeds {', '.join(map(str, seeds))} (one seed: its value). "
            "Diversity / real: within-class mean pairwise distance of the z-scored windows against the real "
            "training windows'; below 0.5 the variant is flagged as collapsed (bold).\n\n" + table(metrics) + "\n")
        for v, name in first.items():
            gen = generated[name]
            save_rgb(tmp / f"traces_{v}.png", traces(
                {"real test": (sets["test"].x, sets["test"].y), name: (gen.x, gen.y)}, meta["classes"],
                meta["channels"], p.plot_examples, meta["rate_hz"]))
        save_rgb(tmp / "losses.png", loss_curves(histories))
    return metrics


@cli
def main() -> None:
    report_stage("sensor", "sensor_classify", ("prepared", "gans"), run)

if __name__ == "__main__":
    main()
