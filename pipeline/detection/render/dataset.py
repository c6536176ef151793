"""Render scene specs into a dataset folder: images/, masks/, coco.json.

Specs are split into ``shards`` contiguous chunks, each rendered by its own worker process
(pipeline.detection.render.blender.worker). Annotation ids are assigned afterwards in image-index order,
so the output does not depend on the shard count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.io.coco import Coco, CocoImage, write_coco
from pipeline.io.images import load_rgb, save_mask, save_rgb
from pipeline.detection.render.annotate import annotate, fisheye_of

PostFn = Callable[[np.ndarray, dict[str, Any]], np.ndarray]


def _drain(proc: subprocess.Popen, bar: tqdm) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("done "):
            bar.update(1)


def render_specs(specs: list[dict[str, Any]], work: Path, shards: int, device: str = "auto",
                 desc: str = "render") -> None:
    """Run one worker process per shard over ``specs``; raises PipelineError if a worker fails."""
    shards = max(1, min(shards, len(specs)))
    threads = max(1, (os.cpu_count() or 1) // shards)
    chunks = [specs[i * len(specs) // shards:(i + 1) * len(specs) // shards] for i in range(shards)]
    procs, logs = [], []
    with tqdm(total=len(specs), desc=desc, unit="img") as bar:
        for k, chunk in enumerate(chunks):
            spec_file = work / f"shard{k}.jsonl"
            spec_file.write_text("".join(json.dumps(s) + "\n" for s in chunk))
            log = open(work / f"shard{k}.log", "w")
            logs.append(log)
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline.detection.render.blender.worker", str(spec_file), str(work),
                 "--threads", str(threads), "--device", device],
                stdout=subprocess.PIPE, stderr=log, text=True)
            procs.append((proc, threading.Thread(target=_drain, args=(proc, bar), daemon=True)))
            procs[-1][1].start()
        for proc, reader in procs:
            proc.wait()
            reader.join()
    for log in logs:
        log.close()
    for k, (proc, _) in enumerate(procs):
        if proc.returncode != 0:
            tail = (work / f"shard{k}.log").read_text().strip().splitlines()[-1:] or ["no output"]
            raise PipelineError(f"render worker for shard {k} failed (exit {proc.returncode}): {tail[0]}")


def composite(rgba: np.ndarray, plate_path: str, spec: dict[str, Any]) -> np.ndarray:
    """Alpha-composite a transparent render (people + shadow-catcher shadows) over a background plate.

    Cycles fills pixels outside the fisheye circle with opaque black; there the plate shows through.
    """
    h, w = rgba.shape[:2]
    plate = Image.fromarray(load_rgb(Path(plate_path))).resize((w, h), Image.BILINEAR)
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    fish = fisheye_of(spec)
    yy, xx = np.mgrid[0:h, 0:w]
    outside = np.hypot(xx + 0.5 - w / 2, yy + 0.5 - h / 2) > fish.radius_of_angle(fish.fov_deg / 2) - 0.5
    a[outside] = 0.0
    out = rgba[..., :3].astype(np.float32) * a + np.asarray(plate, np.float32) * (1 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def assemble(specs: list[dict[str, Any]], work: Path, out: Path, post: PostFn | None = None,
             info: dict[str, Any] | None = None) -> Coco:
    """Decode worker outputs into ``out``/images, ``out``/masks and ``out``/coco.json."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    images, anns = [], []
    for image_id, spec in enumerate(specs, start=1):
        name = f"{spec['index']:06d}"
        with Image.open(work / "rgb" / f"{name}.png") as im:
            rgb = np.asarray(im)
        if spec.get("background"):
            rgb = composite(rgb, spec["background"], spec)
        if post is not None:
            rgb = post(rgb[..., :3], spec)
        id_rgb = np.asarray(Image.open(work / "id" / f"{name}.png").convert("RGB"))
        meta = json.loads((work / "meta" / f"{name}.json").read_text())
        mask, new = annotate(spec, id_rgb, meta, image_id, len(anns) + 1)
        save_rgb(out / "images" / f"{name}.png", rgb[..., :3])
        save_mask(out / "masks" / f"{name}.png", mask)
        images.append(CocoImage(image_id, f"images/{name}.png", rgb.shape[1], rgb.shape[0],
                                f"masks/{name}.png", {"scene_index": spec["index"]}))
        anns.extend(new)
    coco = Coco(images, anns, info or {})
    write_coco(out / "coco.json", coco)
    return coco


def render_dataset(specs: list[dict[str, Any]], out: Path, shards: int, device: str = "auto",
                   post: PostFn | None = None, info: dict[str, Any] | None = None, desc: str = "render") -> Coco:
    """Render ``specs`` and write the dataset into the (already temporary) folder ``out``."""
    with tempfile.TemporaryDirectory(prefix="render-", dir=out.parent) as tmp:
        render_specs(specs, Path(tmp), shards, device, desc)
        return assemble(specs, Path(tmp), out, post, info)
