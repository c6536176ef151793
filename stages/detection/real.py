"""Stage ``real``: the real domain split into train/val/test.

``real.source: demo_real`` renders a clearly named stand-in (a second reality profile seen through a
camera model); any other value is a folder holding <split>.json and the images it names. The stand-in's
render distributes like ``render``'s: ``--shard K/N --shard-dir DIR`` on workers, then ``--merge DIR``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.coco import read_coco
from pipeline.detection.real import SPLITS, import_split
from pipeline.detection.params import RealParams, RenderParams
from pipeline.detection.render.camera_model import apply_camera_model
from pipeline.detection.render.dataset import assemble, render_specs
from pipeline.detection.render.sampling import sample_scene
from pipeline.detection.render.shards import Shard, read_shards, stage_args, write_shard
from pipeline.params import load_params
from pipeline.stage import execute
from pipeline.detection.plots import annotated_grid


def stand_in_specs(p: RealParams, r: RenderParams) -> list[dict[str, Any]]:
    """The scene specs of the demo_real stand-in: train, val and test in that order."""
    if p.source != "demo_real":
        raise PipelineError(f"real.source is {p.source!r}: nothing to render (shards are for 'demo_real')")
    return [sample_scene(r.scene, r.camera, p.seed, i, "demo_real", r.samples, r.denoise)
            for i in range(p.train + p.val + p.test)]


def run(p: RealParams, r: RenderParams, out: Path, merge_from: Path | None = None) -> dict[str, float]:
    """Write out/train, out/val, out/test, each with images/ (masks/) and coco.json; with ``merge_from``, the
    stand-in's images come from the shards rendered there (``run_shard``) instead of a render here."""
    sizes = {"train": p.train, "val": p.val, "test": p.test}
    with atomic_dir(out) as tmp:
        if p.source != "demo_real":
            if merge_from is not None:
                raise PipelineError(f"--merge: real.source is {p.source!r}, not the rendered 'demo_real'")
            source = Path(p.source)
            if not source.is_dir():
                raise PipelineError(f"real.source: folder {source} does not exist (or use 'demo_real')")
            cocos = {s: import_split(source, s, tmp / s) for s in SPLITS}
        else:
            specs = stand_in_specs(p, r)
            work = tmp / ".work"
            if merge_from is None:
                work.mkdir()
                render_specs(specs, work, r.shards, r.device, desc="render demo_real",
                             stall_timeout_s=r.stall_timeout_s)
            where = work if merge_from is None else read_shards("real", specs, merge_from, r.device)
            post = lambda rgb, spec: apply_camera_model(rgb, p.camera_model, p.seed, spec["index"])  # noqa: E731
            cocos, start = {}, 0
            for s in SPLITS:
                info = {"split": s, "profile": "demo_real", "note": "rendered stand-in for real data"}
                cocos[s] = assemble(specs[start:start + sizes[s]], where, tmp / s, post, info)
                start += sizes[s]
            shutil.rmtree(work, ignore_errors=True)
    return {f"{s}_{k}": float(v) for s, c in cocos.items()
            for k, v in (("images", len(c.images)), ("people", len(c.annotations)))}


def run_shard(p: RealParams, r: RenderParams, shard: Shard, shard_dir: Path) -> dict[str, float]:
    """Render shard ``shard`` of the stand-in's specs into ``shard_dir``/K (``r.shards`` processes here)."""
    return write_shard("real", stand_in_specs(p, r), shard, shard_dir, r.shards, r.device, r.stall_timeout_s)


@cli
def main() -> None:
    args = stage_args()
    if args.shard:  # a part of the stage, not the stage: no MLflow run, no metrics file
        params = load_params()
        print(json.dumps(run_shard(params.real, params.render, args.shard, args.shard_dir)))
        return

    def body(params, log):
        metrics = run(params.real, params.render, args.out, args.merge)
        train = args.out / "train"
        log.image("real_train_grid.png", annotated_grid(train, read_coco(train / "coco.json")))
        return metrics

    execute("detection", "real", "real", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
