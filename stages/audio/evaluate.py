"""Stage ``audio_evaluate``: a digit classifier trained on real images judges every run (variant × seed: IS with
it, a Fréchet distance in its features, class agreement with the spoken digit, within-class diversity) and the
volume experiment; the tables in the form of seed Tables 2 and 4 give each variant's mean ± CI over its seeds,
and the collapse alarm flags a variant whose within-class MS-SSIM is far above real images'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.audio.data import read_pairs
from pipeline.audio.evaluation import (Generated, collapsed, evaluate, table2, table4, train_digit_classifier,
                                       volume_experiment, volume_table)
from pipeline.audio.features import Standardizer, load_embedder, read_features
from pipeline.audio.gan import load_generator
from pipeline.audio.params import AudioEvaluateParams, AudioFeaturesParams
from pipeline.audio.plots import class_grid, volume_grid
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.io.images import save_rgb
from pipeline.metrics.stats import over_seeds
from pipeline.stage import report_stage
from pipeline.train.gan_outputs import run_name, seed_runs, variant_files
from pipeline.viz import loss_curves


def _load(gans: Path, name: str) -> tuple:
    """One run's generator, variant settings, samples and loss history."""
    model, samples, history = variant_files(gans, name, "audio", ("model.pt", "samples.npz", "history.json"))
    g, v = load_generator(model)
    with np.load(samples) as z:
        gen = Generated(z["images"], z["label"])
    return g, v, gen, json.loads(history.read_text())


def run(p: AudioEvaluateParams, variants: list[str], seeds: list[int], pairs: Path, features: Path, gans: Path,
        out: Path) -> dict:
    """Score every run (variant × seed), summarise per variant over seeds (mean ± 95 % CI), raise the collapse
    alarm; write out/report.md, metrics.json, grid_<run>.png, volume_<run>.png and losses.png."""
    runs = seed_runs(variants, seeds)
    loaded = {n: _load(gans, n) for n in runs}  # first: a missing run fails before any work
    meta, sets = read_pairs(pairs)
    fmeta, _ = read_features(features, ())
    tr, te, classes, sr = sets["train"], sets["test"], meta["classes"], meta["sample_rate"]
    clf = train_digit_classifier(p, tr.images, tr.image_label, len(classes))
    scored = evaluate(p, clf, tr.images, te.images, te.image_label, {n: x[2] for n, x in loaded.items()})
    per_run = scored["variants"]
    fp = AudioFeaturesParams(**fmeta["params"])
    embedder = load_embedder(torch.load(features / "embedder.pt", weights_only=False), fp, sr)
    cache: dict = {}
    volumes = {}
    for n, (g, v, _, _) in tqdm(loaded.items(), desc="volume experiment"):
        zs = Standardizer(fmeta["features"][v.feature]["mean"], fmeta["features"][v.feature]["std"])
        per_run[n]["volume"], volumes[n] = volume_experiment(
            g, v, clf, te.audio, te.label, p.gains, sr, fp, embedder, zs, meta["image_size"], p.seed, cache)
        per_run[n]["is_ratio"] = per_run[n]["is_mean"] / scored["real"]["is_mean"]
    metrics = {"real": scored["real"], "classifier": {"train_images": len(tr.images),
                                                      "test_accuracy": scored["real"]["agreement"]},
               "seeds": list(seeds), "variants": over_seeds(per_run, runs), "runs": per_run}
    metrics["collapsed"] = collapsed(metrics)
    settings = {v: loaded[run_name(v, seeds[0])][1] for v in variants}
    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / "metrics.json", metrics)
        (tmp / "report.md").write_text(report(metrics, settings, fmeta, meta, p.gains))
        for n, (_, _, gen, _) in loaded.items():
            save_rgb(tmp / f"grid_{n}.png", class_grid(gen.images, gen.label, classes, p.grid_per_class,
                                                       f"{n}: spoken digit (test voices) → generated",
                                                       te.images, te.image_label))
            save_rgb(tmp / f"volume_{n}.png", volume_grid(volumes[n], te.label, classes, f"{n}: input gain"))
        save_rgb(tmp / "losses.png", loss_curves({n: x[3] for n, x in loaded.items()}))
    return metrics


def report(metrics: dict, variants: dict, fmeta: dict, meta: dict, gains: list[float]) -> str:
    c = metrics["classifier"]
    return (
        "# Audio → image: sound-conditioned GANs (seed 002)\n\n"
        f"Test clips are spoken by voices never heard in training ({', '.join(meta['voices']['test'])}). "
        f"The judge is a digit classifier trained on {c['train_images']} real training images only "
        f"(accuracy on real test images {c['test_accuracy']:.3f}); IS and FD use it, not Inception-v3. "
        f"The audio classifier behind the `embedding` feature scores {fmeta['embedder_test_accuracy']:.3f} "
        f"on the test clips.\n\nEvery variant is trained with seeds {', '.join(map(str, metrics['seeds']))}; "
        "a cell is the mean over them ± the half-width of the 95 % Student-t interval (the mean alone for one "
        "seed). Collapse alarm: a variant whose within-class MS-SSIM (mean over seeds) exceeds real test "
        f"images' ({metrics['real']['ms_ssim_within_class']:.3f}) by more than 0.15 is named in bold and "
        "tagged `collapsed` in MLflow"
        + (f" (flagged: {', '.join(f'`{n}`' for n, f in metrics['collapsed'].items() if f)})."
           if any(metrics["collapsed"].values()) else " (none flagged).")
        + "\n\n## Ablation (form of seed Table 4)\n\n" + table4(metrics, variants)
        + "\n\n## Sound features (form of seed Table 2)\n\n" + table2(metrics, variants, fmeta["features"])
        + "\n\n## Volume (seed §5.3): class agreement / mean ink per input gain\n\n" + volume_table(metrics, gains)
        + "\n")


@cli
def main() -> None:
    report_stage("audio", "audio_evaluate", ("pairs", "features", "gans"), run)

if __name__ == "__main__":
    main()
