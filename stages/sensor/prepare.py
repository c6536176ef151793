"""Stage ``sensor_prepare``: recordings (BasicMotions from aeon, or a MotionSense folder) → resampled
sliding windows split by source, plus the scalers fitted on the training windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic
from pipeline.sensor.data import MinMaxScaler, ZScaler, load_source, prepare, read_prepared, save_windows
from pipeline.sensor.params import SensorPrepareParams
from pipeline.sensor.plots import traces
from pipeline.stage import execute, parse_paths


def run(p: SensorPrepareParams, out: Path) -> dict[str, float]:
    """Write out/{train,val,test}.npz (windows in sensor units, labels, sources) and out/meta.json."""
    recs, channels = load_source(p.source, p.gyroscope)
    sets, classes = prepare(recs, p.rate_hz, p.window, p.stride, p.val, p.test, p.seed)
    meta = {"classes": classes, "channels": channels, "rate_hz": p.rate_hz, "window": p.window,
            "source_rate_hz": min(r.rate_hz for r in recs),  # the slowest recording: the band the windows hold
            "minmax": MinMaxScaler.fit(sets["train"].x).to_dict(), "zscore": ZScaler.fit(sets["train"].x).to_dict(),
            "sources": {s: sorted(set(ws.source.tolist())) for s, ws in sets.items()}}
    with atomic_dir(out) as tmp:
        for split, ws in sets.items():
            save_windows(tmp / f"{split}.npz", ws)
        write_json_atomic(tmp / "meta.json", meta)
    metrics: dict[str, float] = {"recordings": float(len(recs)), "classes": float(len(classes))}
    for split, ws in sets.items():
        metrics[f"{split}_windows"] = float(len(ws.x))
        metrics[f"{split}_sources"] = float(len(set(ws.source.tolist())))
        for i, c in enumerate(classes):
            metrics[f"{split}_{c}"] = float(np.sum(ws.y == i))
    return metrics


@cli
def main() -> None:
    args = parse_paths("out")

    def body(params, log):
        metrics = run(params.sensor_prepare, args.out)
        meta, sets = read_prepared(args.out, ("train",))
        log.image("train_windows.png", traces({"real": (sets["train"].x, sets["train"].y)}, meta["classes"],
                                              meta["channels"], rate_hz=meta["rate_hz"]))
        return metrics

    execute("sensor", "sensor_prepare", "sensor_prepare", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
