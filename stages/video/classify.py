"""Stage ``video_classify``: a C3D-style classifier trained on real clips grades every GAN variant
(inception score vs the real test clips, fd in its feature space, MS-SSIM diversity, temporal change),
optionally with activation-maximisation samples steered by a different network. Report + GIFs."""

from __future__ import annotations

import shutil
from pathlib import Path

from torch import nn

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.io.images import save_rgb
from pipeline.stage import report_stage
from pipeline.train.gan_outputs import load_histories, load_samples, run_name, seed_runs, variant_files
from pipeline.video.data import read_prepared
from pipeline.video.evaluation import evaluate, table
from pipeline.video.gan import load_generator
from pipeline.video.params import VideoClassifyParams
from pipeline.video.plots import clips_gif, strip
from pipeline.viz import loss_curves


def _generator(gans: Path, name: str) -> tuple[nn.Module, int]:
    """A variant's generator and latent size, for activation maximisation."""
    (model,) = variant_files(gans, name, "video", ("model.pt",))
    g, v = load_generator(model)
    return g, v.latent_dim


def scorer_warning(accuracy: float, n_classes: int, floor: float = 0.8) -> str:
    """A paragraph for the report when the scorer is too weak for its IS and fd to mean much."""
    if accuracy >= floor:
        return ""
    return (f"**Warning: the scorer is weak** (test accuracy {accuracy:.3f} < {floor}, chance "
            f"{1 / n_classes:.3f}): IS and fd from it say little; train it longer or at a lower "
            f"`video_classify.lr`.\n\n")


def run(p: VideoClassifyParams, variants: list[str], seeds: list[int], prepared: Path, gans: Path, out: Path) -> dict:
    """Score every run (variant × seed) in ``gans/<variant>-<seed>``; write out/report.md, metrics.json, GIFs
    (real, and each variant's first seed: samples, interpolations, AM samples) and losses.png."""
    meta, sets = read_prepared(prepared)
    runs = seed_runs(variants, seeds)
    samples = load_samples(gans, list(runs), "video", lambda z: z["x"])
    metrics, am = evaluate(p, sets["train"], sets["test"], len(meta["classes"]), samples,
                           lambda n: _generator(gans, n), runs)
    first = {v: run_name(v, seeds[0]) for v in variants}
    histories = {f"{n}{'' if k == 'video' else ' (2D pretraining)'}": h
                 for n, phases in load_histories(gans, list(first.values())).items() for k, h in phases.items()}
    fps, cols = meta["fps"], min(p.gif_clips, 4)
    with atomic_dir(out) as tmp:
        write_json_atomic(tmp / "metrics.json", metrics)
        (tmp / "report.md").write_text(
            f"# Video domain: real vs generated clips\n\nSource: {meta['source']}; label: {meta['label']} "
            f"({', '.join(meta['classes'])}); clips (C, T, H, W) = {tuple(meta['shape'])}. The scorer "
            f"({p.classifier}) was trained on the real training clips only; its test accuracy is "
            f"{metrics['real']['accuracy']:.3f}. IS and fd use this classifier, not Inception-v3. Each variant: "
            f"mean ± 95 % t-interval over training seeds {', '.join(map(str, seeds))} (one seed: its value). "
            f"A variant whose frame MS-SSIM is more than 0.15 above the real clips' is flagged as collapsed "
            f"(bold).\n\n"
            + scorer_warning(metrics['real']['accuracy'], len(meta["classes"]))
            + table(metrics, p.classifier) + "\n")
        clips_gif(tmp / "real.gif", sets["test"].x[:p.gif_clips], cols, fps)
        save_rgb(tmp / "real.png", strip(sets["test"].x[:4]))
        for v, name in first.items():
            clips = samples[name]
            clips_gif(tmp / f"{v}.gif", clips[:p.gif_clips], cols, fps)
            save_rgb(tmp / f"{v}.png", strip(clips[:4]))
            shutil.copy(gans / name / "interpolation.gif", tmp / f"{v}_interpolation.gif")
            if name in am:
                clips_gif(tmp / f"{v}_am.gif", am[name][:p.gif_clips], cols, fps)
        save_rgb(tmp / "losses.png", loss_curves(histories, ("loss_G", "loss_D", "G_adv")))
    return metrics


@cli
def main() -> None:
    report_stage("video", "video_classify", ("prepared", "gans"), run, pictures=("*.png", "*.gif"))

if __name__ == "__main__":
    main()
