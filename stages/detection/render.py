"""Stage ``render``: sample scenes (numpy) and render the synthetic set S with Blender.

``--shard K/N --shard-dir DIR`` renders only shard K of N into DIR/K (on any worker), and ``--merge DIR``
assembles the N shards into ``--out``: the same bytes one render writes (pipeline.detection.render.shards).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.coco import read_coco
from pipeline.detection.params import RenderParams
from pipeline.detection.render.dataset import assemble, render_dataset
from pipeline.detection.render.inputs import ASSET_EXTS, background_plates, list_inputs
from pipeline.detection.render.sampling import sample_scene
from pipeline.detection.render.shards import Shard, read_shards, stage_args, write_shard
from pipeline.params import load_params
from pipeline.stage import execute
from pipeline.detection.plots import annotated_grid

INFO = {"split": "S", "profile": "synthetic"}


def scene_specs(p: RenderParams) -> list[dict[str, Any]]:
    """The ``p.images`` scene specs of the synthetic set (numpy sampling; cheap)."""
    plates = background_plates(p.backgrounds)
    assets = list_inputs(p.assets, ASSET_EXTS, "render.assets")
    return [sample_scene(p.scene, p.camera, p.seed, i, "synthetic", p.samples, p.denoise,
                         background=plates[i % len(plates)] if plates else None, assets=assets)
            for i in range(p.images)]


def run(p: RenderParams, out: Path, merge_from: Path | None = None) -> dict[str, float]:
    """Render ``p.images`` scenes into ``out`` (images/, masks/, coco.json); or, with ``merge_from``, assemble
    the shards rendered there (``run_shard``) instead of rendering."""
    specs = scene_specs(p)
    with atomic_dir(out) as tmp:
        if merge_from is None:
            coco = render_dataset(specs, tmp, p.shards, p.device, info=INFO, stall_timeout_s=p.stall_timeout_s)
        else:
            coco = assemble(specs, read_shards("render", specs, merge_from, p.device), tmp, info=INFO)
    return {"images": len(coco.images), "people": len(coco.annotations),
            "sitting": sum(a.extra["pose"] == "sitting" for a in coco.annotations)}


def run_shard(p: RenderParams, shard: Shard, shard_dir: Path) -> dict[str, float]:
    """Render shard ``shard`` of the specs into ``shard_dir``/K, with ``p.shards`` worker processes here."""
    return write_shard("render", scene_specs(p), shard, shard_dir, p.shards, p.device, p.stall_timeout_s)


@cli
def main() -> None:
    args = stage_args()
    if args.shard:  # a part of the stage, not the stage: no MLflow run, no metrics file
        print(json.dumps(run_shard(load_params().render, args.shard, args.shard_dir)))
        return

    def body(params, log):
        metrics = run(params.render, args.out, args.merge)
        log.image("render_grid.png", annotated_grid(args.out, read_coco(args.out / "coco.json")))
        return metrics

    execute("detection", "render", "render", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
