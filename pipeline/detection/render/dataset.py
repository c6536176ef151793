"""Render scene specs into a dataset folder: images/, masks/, coco.json.

Specs are split into ``shards`` contiguous chunks, each rendered by its own worker process
(pipeline.detection.render.blender.worker). Annotation ids are assigned afterwards in image-index order,
so the output does not depend on the shard count, nor on which machine rendered a chunk
(pipeline.detection.render.shards distributes them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.io.coco import Coco, CocoImage, write_coco
from pipeline.io.images import load_rgb, save_mask, save_rgb
from pipeline.detection.render.annotate import annotate, fisheye_of

PostFn = Callable[[np.ndarray, dict[str, Any]], np.ndarray]


WORKER = [sys.executable, "-m", "pipeline.detection.render.blender.worker"]


class _Shard:
    """One worker process and what its stdout said last: read as bytes and decoded with replacement, so a
    non-UTF-8 byte (Blender echoes user asset names) can never kill the reader and leave the worker blocked
    on a full pipe."""

    def __init__(self, k: int, proc: subprocess.Popen, bar: tqdm, log: Path) -> None:
        self.k, self.proc, self.bar, self.log = k, proc, bar, log
        self.last_output, self.last_image = time.monotonic(), None
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.last_output = time.monotonic()
            line = raw.decode("utf-8", errors="replace")
            if line.startswith("done "):
                self.last_image = line.split()[1] if len(line.split()) > 1 else "?"
                self.bar.update(1)

    def log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return lines[-1] if lines else "no output"


def _stop(shards: list[_Shard]) -> None:
    for s in shards:
        if s.proc.poll() is None:
            s.proc.kill()
    for s in shards:
        s.proc.wait()
        s.reader.join(timeout=5)


def split(specs: list[dict[str, Any]], shards: int) -> list[list[dict[str, Any]]]:
    """``specs`` in ``shards`` contiguous chunks of near-equal size (the first ones one shorter)."""
    return [specs[i * len(specs) // shards:(i + 1) * len(specs) // shards] for i in range(shards)]


def render_specs(specs: list[dict[str, Any]], work: Path, shards: int, device: str = "auto",
                 desc: str = "render", stall_timeout_s: float = 600.0, worker: list[str] | None = None) -> None:
    """Run one worker process per shard over ``specs``; raises PipelineError if a worker fails, or kills
    every worker and names the shard and its last image when one prints nothing for ``stall_timeout_s``.
    ``worker`` is the command that renders one shard file (default: the Blender worker)."""
    shards = max(1, min(shards, len(specs)))
    threads = max(1, (os.cpu_count() or 1) // shards)
    chunks = split(specs, shards)
    running: list[_Shard] = []
    with tqdm(total=len(specs), desc=desc, unit="img") as bar:
        try:
            for k, chunk in enumerate(chunks):
                spec_file = work / f"shard{k}.jsonl"
                spec_file.write_text("".join(json.dumps(s) + "\n" for s in chunk))
                log = work / f"shard{k}.log"
                with open(log, "wb") as err:
                    proc = subprocess.Popen([*(worker or WORKER), str(spec_file), str(work), "--threads", str(threads),
                                             "--device", device], stdout=subprocess.PIPE, stderr=err)
                running.append(_Shard(k, proc, bar, log))
            while any(s.proc.poll() is None for s in running):
                now = time.monotonic()
                for s in running:
                    if s.proc.poll() is None and now - s.last_output > stall_timeout_s:
                        raise PipelineError(
                            f"render worker for shard {s.k} printed nothing for {stall_timeout_s:g} s "
                            f"(last image done: {s.last_image or 'none'}; last log line: {s.log_tail()}); "
                            "killed every worker (raise render.stall_timeout_s if one image takes longer)")
                time.sleep(0.2)
        finally:
            _stop(running)
    for s in running:
        if s.proc.returncode != 0:
            tail = s.log_tail()
            if "No space left on device" in tail or (tail == "no output" and shutil.disk_usage(work).free < 64 << 20):
                raise PipelineError(f"render worker for shard {s.k} failed: no space left on device under {work.parent} "
                                    f"({shutil.disk_usage(work).free >> 20} MiB free, errno 28)")
            raise PipelineError(f"render worker for shard {s.k} failed (exit {s.proc.returncode}): {tail}")


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


def assemble(specs: list[dict[str, Any]], work: Path | Mapping[int, Path], out: Path,
             post: PostFn | None = None, info: dict[str, Any] | None = None) -> Coco:
    """Decode worker outputs into ``out``/images, ``out``/masks and ``out``/coco.json.

    ``work``: the folder the workers wrote, or a map from spec index to it (shards rendered elsewhere).
    """
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    images, anns = [], []
    for image_id, spec in enumerate(specs, start=1):
        name = f"{spec['index']:06d}"
        src = work if isinstance(work, Path) else work[spec["index"]]
        with Image.open(src / "rgb" / f"{name}.png") as im:
            rgb = np.asarray(im)
        if spec.get("background"):
            rgb = composite(rgb, spec["background"], spec)
        if post is not None:
            rgb = post(rgb[..., :3], spec)
        id_rgb = np.asarray(Image.open(src / "id" / f"{name}.png").convert("RGB"))
        meta = json.loads((src / "meta" / f"{name}.json").read_text())
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
                   post: PostFn | None = None, info: dict[str, Any] | None = None, desc: str = "render",
                   stall_timeout_s: float = 600.0) -> Coco:
    """Render ``specs`` and write the dataset into the (already temporary) folder ``out``."""
    with tempfile.TemporaryDirectory(prefix=".work-", dir=out) as tmp:  # inside out: a kill leaves one folder
        render_specs(specs, Path(tmp), shards, device, desc, stall_timeout_s)
        return assemble(specs, Path(tmp), out, post, info)
