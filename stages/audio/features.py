"""Stage ``audio_features``: every clip's condition vectors (spectrogram, log-mel fbank, MFCC via librosa,
and the embedding of an audio classifier trained on the training clips), each averaged over time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from pipeline.audio.data import read_pairs
from pipeline.audio.features import Standardizer, condition_vectors, probe_accuracy, train_embedder
from pipeline.audio.params import AudioFeaturesParams
from pipeline.audio.plots import feature_means
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.io.images import save_rgb
from pipeline.stage import execute, parse_paths
from pipeline.train.classifier import predict_proba


def run(p: AudioFeaturesParams, pairs: Path, out: Path) -> dict:
    """Write out/{train,test}.npz (raw vectors per feature + label), embedder.pt, meta.json (dims,
    training-split z-score statistics, linear-probe accuracies) and feature_means.png."""
    meta, sets = read_pairs(pairs)
    sr, classes = meta["sample_rate"], meta["classes"]
    tr, te = sets["train"], sets["test"]
    emb = train_embedder(tr.audio, tr.label, len(classes), sr, p)
    feats = {s: condition_vectors(ps.audio, sr, p, emb, desc=f"features ({s})") for s, ps in sets.items()}
    info = {name: {"dim": int(x.shape[1]), **Standardizer.fit(x).to_dict(),
                   "probe_accuracy": probe_accuracy(x, tr.label, feats["test"][name], te.label, p.seed)}
            for name, x in feats["train"].items()}
    emb_acc = float((predict_proba(emb.net, emb.inputs(te.audio)).argmax(1) == te.label).mean())
    with atomic_dir(out) as tmp:
        for split, f in feats.items():
            np.savez_compressed(tmp / f"{split}.npz", label=sets[split].label, **f)
        torch.save(emb.state(), tmp / "embedder.pt")
        write_json_atomic(tmp / "meta.json", {"sample_rate": sr, "classes": classes, "features": info,
                                              "embedder_test_accuracy": emb_acc, "params": dataclasses.asdict(p)})
        save_rgb(tmp / "feature_means.png", feature_means(feats["train"], tr.label, classes,
                                                          "class means of the z-scored training vectors"))
    return {"embedder_test_accuracy": emb_acc,
            **{f"{n}.probe_accuracy": i["probe_accuracy"] for n, i in info.items()},
            **{f"{n}.dims": float(i["dim"]) for n, i in info.items()}}


@cli
def main() -> None:
    args = parse_paths("pairs", "out")

    def body(params, log):
        metrics = run(params.audio_features, args.pairs, args.out)
        log.file(args.out / "feature_means.png")
        return metrics

    execute("audio", "audio_features", "audio_features", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
