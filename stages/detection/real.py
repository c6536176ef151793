"""Stage ``real``: the real domain split into train/val/test.

``real.source: demo_real`` renders a clearly named stand-in (a second reality profile seen through a
camera model); any other value is a folder holding <split>.json and the images it names.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.errors import PipelineError, cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.coco import read_coco
from pipeline.detection.real import SPLITS, import_split
from pipeline.detection.params import RealParams, RenderParams
from pipeline.detection.render.camera_model import apply_camera_model
from pipeline.detection.render.dataset import assemble, render_specs
from pipeline.detection.render.sampling import sample_scene
from pipeline.stage import execute, parse_paths
from pipeline.detection.plots import annotated_grid


def run(p: RealParams, r: RenderParams, out: Path) -> dict[str, float]:
    """Write out/train, out/val, out/test, each with images/ (masks/) and coco.json."""
    sizes = {"train": p.train, "val": p.val, "test": p.test}
    with atomic_dir(out) as tmp:
        if p.source != "demo_real":
            source = Path(p.source)
            if not source.is_dir():
                raise PipelineError(f"real.source: folder {source} does not exist (or use 'demo_real')")
            cocos = {s: import_split(source, s, tmp / s) for s in SPLITS}
        else:
            specs = [sample_scene(r.scene, r.camera, p.seed, i, "demo_real", r.samples, r.denoise)
                     for i in range(sum(sizes.values()))]
            work = tmp / ".work"
            work.mkdir()
            render_specs(specs, work, r.shards, r.device, desc="render demo_real", stall_timeout_s=r.stall_timeout_s)
            post = lambda rgb, spec: apply_camera_model(rgb, p.camera_model, p.seed, spec["index"])  # noqa: E731
            cocos, start = {}, 0
            for s in SPLITS:
                info = {"split": s, "profile": "demo_real", "note": "rendered stand-in for real data"}
                cocos[s] = assemble(specs[start:start + sizes[s]], work, tmp / s, post, info)
                start += sizes[s]
            shutil.rmtree(work)
    return {f"{s}_{k}": float(v) for s, c in cocos.items()
            for k, v in (("images", len(c.images)), ("people", len(c.annotations)))}


@cli
def main() -> None:
    args = parse_paths("out")

    def body(params, log):
        metrics = run(params.real, params.render, args.out)
        train = args.out / "train"
        log.image("real_train_grid.png", annotated_grid(train, read_coco(train / "coco.json")))
        return metrics

    execute("detection", "real", "real", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
