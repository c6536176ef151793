"""Stage ``audio_synthesize``: spoken digits from eSpeak NG (many voices, accents, speeds, pitches, noise at
a random SNR) paired by class with real MNIST digits, split by voice; or the user's (audio, image) pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio.data import SPLITS, load_user_pairs, read_pairs, save_pairs, synthesize_pairs, write_examples
from pipeline.audio.params import AudioSynthesizeParams
from pipeline.audio.plots import class_grid, spectrograms
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.io.images import save_rgb
from pipeline.stage import execute, parse_paths


def run(p: AudioSynthesizeParams, out: Path) -> dict[str, float]:
    """Write out/{train,test}.npz (clips, classes, voices, real images, pairing), meta.json and examples/*.wav."""
    sets, classes, extra = synthesize_pairs(p) if p.source == "espeak" else load_user_pairs(p)
    # the embedded default pairs by class only (any MNIST digit of the class fits the clip); user pairs are fixed
    meta = {"source": p.source, "pairing": "class" if p.source == "espeak" else "fixed", "classes": classes,
            "sample_rate": p.sample_rate, "samples": sets["train"].audio.shape[1], "image_size": p.image_size, "channels": int(sets["train"].images.shape[1]),
            "voices": {s: sorted(set(ps.voice.tolist())) for s, ps in sets.items()}}
    with atomic_dir(out) as tmp:
        for split, ps in sets.items():
            save_pairs(tmp / f"{split}.npz", ps)
        write_examples(tmp / "examples", sets["test"], classes, p.sample_rate)
        save_rgb(tmp / "spectrograms.png", spectrograms(sets["test"].audio, sets["test"].label, classes,
                                                        p.sample_rate, "test clips (voices unseen in training)"))
        save_rgb(tmp / "pairs.png", class_grid(sets["train"].paired_images(), sets["train"].label, classes, 6,
                                               "real images paired with training clips"))
        write_json_atomic(tmp / "meta.json", meta)
    metrics: dict[str, float] = {"classes": float(len(classes)), **{k: float(v) for k, v in extra.items()}}
    for split in SPLITS:
        ps = sets[split]
        metrics.update({f"{split}_clips": float(len(ps.audio)), f"{split}_voices": float(len(set(ps.voice.tolist()))),
                        f"{split}_images": float(len(ps.images))})
        for k in ("snr_db", "rate_wpm"):
            if k in ps.info:
                metrics[f"{split}_{k}_mean"] = float(np.mean(ps.info[k]))
    return metrics


@cli
def main() -> None:
    args = parse_paths("out")

    def body(params, log):
        metrics = run(params.audio_synthesize, args.out)
        read_pairs(args.out)  # what was written reads back
        for f in [args.out / "spectrograms.png", args.out / "pairs.png"]:
            log.file(f)
        for f in sorted((args.out / "examples").glob("*.wav")):
            log.file(f, "examples")
        return metrics

    execute("audio", "audio_synthesize", "audio_synthesize", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
