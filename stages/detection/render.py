"""Stage ``render``: sample scenes (numpy) and render the synthetic set S with Blender."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.coco import read_coco
from pipeline.detection.params import RenderParams
from pipeline.detection.render.dataset import render_dataset
from pipeline.detection.render.inputs import ASSET_EXTS, background_plates, list_inputs
from pipeline.detection.render.sampling import sample_scene
from pipeline.stage import execute, parse_paths
from pipeline.detection.plots import annotated_grid


def run(p: RenderParams, out: Path) -> dict[str, float]:
    """Render ``p.images`` scenes into ``out`` (images/, masks/, coco.json)."""
    plates = background_plates(p.backgrounds)
    assets = list_inputs(p.assets, ASSET_EXTS, "render.assets")
    specs = [sample_scene(p.scene, p.camera, p.seed, i, "synthetic", p.samples, p.denoise,
                          background=plates[i % len(plates)] if plates else None, assets=assets)
             for i in range(p.images)]
    with atomic_dir(out) as tmp:
        coco = render_dataset(specs, tmp, p.shards, p.device, info={"split": "S", "profile": "synthetic"},
                              stall_timeout_s=p.stall_timeout_s)
    return {"images": len(coco.images), "people": len(coco.annotations),
            "sitting": sum(a.extra["pose"] == "sitting" for a in coco.annotations)}


@cli
def main() -> None:
    args = parse_paths("out")

    def body(params, log):
        metrics = run(params.render, args.out)
        log.image("render_grid.png", annotated_grid(args.out, read_coco(args.out / "coco.json")))
        return metrics

    execute("detection", "render", "render", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
