"""Render worker: one process per shard, so shards run in parallel and Blender's memory growth ends
with the process.

    python -m pipeline.detection.render.blender.worker SPECS.jsonl OUT_DIR --threads N --device auto

For every spec it writes OUT_DIR/rgb/<name>.png (RGBA when a background plate is composited later),
OUT_DIR/id/<name>.png (R,B = person id low/high byte, G = 128 body / 255 head, black elsewhere) and
OUT_DIR/meta/<name>.json, then prints ``done <index>`` so the parent can show progress.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import bpy

from pipeline.detection.render.blender import scene as bscene


def _colour_management(raw: bool) -> None:
    scene = bpy.context.scene
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "Raw" if raw else "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.render.dither_intensity = 0.0


def _write(path: Path, rgba: bool) -> None:
    scene = bpy.context.scene
    settings = scene.render.image_settings
    settings.file_format = "PNG"
    settings.color_mode = "RGBA" if rgba else "RGB"
    settings.color_depth = "8"
    settings.compression = 15
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def render_spec(spec: dict[str, Any], out: Path, threads: int, device: str) -> None:
    name = f"{spec['index']:06d}"
    bscene.reset(threads, device)
    handles = bscene.build(spec)
    scene = bpy.context.scene
    plate = bool(spec.get("background"))
    # Beauty pass.
    cyc = scene.cycles
    cyc.samples = spec["render"]["samples"]
    cyc.seed = spec["render"]["cycles_seed"]
    cyc.use_denoising = spec["render"]["denoise"]
    cyc.max_bounces, cyc.diffuse_bounces, cyc.glossy_bounces = 4, 2, 2
    cyc.filter_width = 1.5
    # Measured on 2 CPU cores (bench/render_speed.py): these cut a 448x336 frame from ~9 s to ~4.5 s
    # per single-threaded worker with no visible change at 16 samples.
    cyc.denoising_prefilter = "FAST"
    cyc.use_light_tree = False
    cyc.caustics_reflective = cyc.caustics_refractive = False
    cyc.adaptive_threshold = 0.05
    cyc.sample_clamp_indirect = 1.0  # fireflies from the area lights bouncing off walls
    scene.render.use_motion_blur = True
    scene.render.motion_blur_shutter = 0.5
    scene.render.film_transparent = plate
    _colour_management(raw=False)
    _write(out / "rgb" / f"{name}.png", rgba=plate)
    # ID pass: flat emission per person and part, one sample through each pixel centre, no blur.
    cache: dict = {}
    black = bscene._id_material(0, 0, 0, cache)
    for ob in handles["statics"]:
        bscene.set_material(ob, black)
        ob.is_shadow_catcher = False
    for pid, parts in handles["people"]:
        for ob, role in parts:  # role: True head, False body, None props (chairs) and asset meshes
            if role is None and ob.name.startswith("chair"):
                bscene.set_material(ob, black)
            else:
                g = bscene.HEAD if role else bscene.BODY
                bscene.set_material(ob, bscene._id_material(pid % 256, g, pid // 256, cache))
    scene.world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    cyc.samples, cyc.use_denoising, cyc.filter_width = 1, False, 0.01
    cyc.use_adaptive_sampling = False
    scene.render.use_motion_blur = False
    scene.render.film_transparent = False
    for light in bpy.data.lights:
        light.energy = 0.0
    _colour_management(raw=True)
    _write(out / "id" / f"{name}.png", rgba=False)
    (out / "meta" / f"{name}.json").write_text(json.dumps({"assets": handles["meta"]}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    for sub in ("rgb", "id", "meta"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    for line in args.specs.read_text().splitlines():
        spec = json.loads(line)
        try:
            render_spec(spec, args.out, args.threads, args.device)
        except bscene.AssetError as exc:  # the last line of the shard's log is what the parent reports
            print(f"image {spec['index']}: {exc}", file=sys.stderr, flush=True)
            return 3
        print(f"done {spec['index']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
