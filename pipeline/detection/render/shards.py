"""Distributed render: shard K of N of a stage's scene specs rendered anywhere, then merged.

    python -m stages.detection.render --out data/render --shard 0/2 --shard-dir /shared/shards   # worker A
    python -m stages.detection.render --out data/render --shard 1/2 --shard-dir /shared/shards   # worker B
    python -m stages.detection.render --out data/render --merge /shared/shards                   # anywhere

A shard folder ``DIR/K`` holds what ``assemble`` reads (the worker outputs rgb/, id/, meta/ of its chunk of
the specs) and ``shard.json``: the stage, K, N, the spec indices and a hash of everything that decides the
pixels (every spec of the stage, referenced files by content, the Blender worker's code, the bpy version,
the device setting). It is written into a temporary folder and renamed, so a shard is there whole or not at
all; a shard already there with the same hash is kept (a retried task does not render it again). The merge
refuses, in one line, a missing, duplicated or foreign shard, so the merged folder is exactly what one
render of the same specs writes (annotation ids are assigned at assembly, in image order).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.io.atomic import atomic_dir
from pipeline.detection.render.dataset import render_specs, split

MANIFEST = "shard.json"
WORKER_CODE = ("worker.py", "scene.py")  # what a render worker process runs (blender/), hashed into a shard


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` (0-based) of ``n``."""

    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` with 0 <= K < N."""
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise PipelineError(f"--shard: expected K/N with 0 <= K < N (shard K of N), got {text!r}")
    return Shard(int(m.group(1)), int(m.group(2)))


def stage_args() -> argparse.Namespace:
    """The arguments of a render stage (``render``, ``real``): ``--out``, ``--metrics`` and ``--headline`` as
    every stage, and either ``--shard K/N --shard-dir DIR`` (render one shard there, write nothing else) or
    ``--merge DIR`` (assemble the shards in DIR into ``--out``)."""
    from pipeline.stage import stage_parser

    ap = stage_parser("out")
    ap.add_argument("--shard", type=str, default=None, metavar="K/N", help="render shard K of N only")
    ap.add_argument("--shard-dir", type=Path, default=None, help="where --shard writes its folder K")
    ap.add_argument("--merge", type=Path, default=None, metavar="DIR", help="assemble the shards in DIR")
    args = ap.parse_args()
    if args.shard is not None:
        args.shard = parse_shard(args.shard)
        if args.shard_dir is None or args.merge is not None:
            raise PipelineError("--shard K/N needs --shard-dir DIR (and no --merge)")
    elif args.shard_dir is not None:
        raise PipelineError("--shard-dir goes with --shard K/N (to merge shards, use --merge DIR)")
    return args


def _file_md5(path: str) -> str:
    st = os.stat(path)
    return _md5(path, st.st_mtime_ns, st.st_size)


@cache
def _md5(path: str, mtime_ns: int, size: int) -> str:
    """A file's md5, once per version of it (the key holds its mtime and size)."""
    from pipeline.tracking import file_md5

    return file_md5(path)


def _by_content(value: Any) -> Any:
    """Absolute file paths (background plates, assets) replaced by their content's md5: two checkouts in
    different places render the same pixels from the same files."""
    if isinstance(value, dict):
        return {k: _by_content(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_by_content(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value) and os.path.isfile(value):
        return f"md5:{_file_md5(value)}"
    return value


def spec_hash(stage: str, specs: list[dict[str, Any]], device: str) -> str:
    """What decides a shard's pixels, hashed: the stage, all of its specs, the worker code, bpy, device."""
    blender = Path(__file__).parent / "blender"
    try:
        bpy = metadata.version("bpy")
    except metadata.PackageNotFoundError:
        bpy = "unknown"
    doc = {"stage": stage, "specs": _by_content(specs), "device": device, "bpy": bpy,
           "code": {f: _file_md5(str(blender / f)) for f in WORKER_CODE}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        m = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def write_shard(stage: str, specs: list[dict[str, Any]], shard: Shard, shard_dir: Path, procs: int,
                device: str, stall_timeout_s: float) -> dict[str, float]:
    """Render shard ``shard`` of ``specs`` into ``shard_dir``/K with ``procs`` worker processes here."""
    if shard.n > len(specs):
        raise PipelineError(f"--shard {shard}: {shard.n} shards for {len(specs)} images of stage {stage}; "
                            f"use at most {len(specs)}")
    part = split(specs, shard.n)[shard.k]
    digest = spec_hash(stage, specs, device)
    folder = Path(shard_dir) / str(shard.k)
    old = _read_manifest(folder)
    if old and old.get("hash") == digest and (old.get("k"), old.get("n")) == (shard.k, shard.n):
        return {"images": len(part), "reused": 1}
    with atomic_dir(folder) as tmp:
        render_specs(part, tmp, procs, device, desc=f"{stage} shard {shard}", stall_timeout_s=stall_timeout_s)
        for f in [*tmp.glob("shard*.jsonl"), *tmp.glob("shard*.log")]:
            f.unlink()
        (tmp / MANIFEST).write_text(json.dumps({"stage": stage, "k": shard.k, "n": shard.n, "hash": digest,
                                                "indices": [s["index"] for s in part]}))
    return {"images": len(part), "reused": 0}


def read_shards(stage: str, specs: list[dict[str, Any]], shard_dir: Path, device: str) -> dict[int, Path]:
    """Spec index -> the shard folder holding its worker outputs, once every check passes: each folder in
    ``shard_dir`` is a shard of this stage rendered from these specs (same hash), no shard is there twice,
    none is missing, and every image of each is there. Anything else raises one PipelineError line."""
    shard_dir = Path(shard_dir)
    if not shard_dir.is_dir():
        raise PipelineError(f"--merge {shard_dir}: no such folder")
    digest, found = spec_hash(stage, specs, device), {}
    folders = sorted(d for d in shard_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in folders:
        m = _read_manifest(d)
        if m is None or not all(isinstance(m.get(k), int) for k in ("k", "n")):
            raise PipelineError(f"{d}: not a render shard ({MANIFEST} missing or unreadable)")
        if m.get("stage") != stage:
            raise PipelineError(f"{d}: a shard of stage {m.get('stage')!r}, not of {stage!r}; "
                                "merge it with its own stage")
        if m.get("hash") != digest:
            raise PipelineError(f"{d}: rendered with other params or code than this merge (spec hash "
                                f"{str(m.get('hash'))[:12]}, expected {digest[:12]}); render it again")
        key = (m["k"], m["n"])
        if key in found:
            raise PipelineError(f"shard {key[0]}/{key[1]} is there twice: {found[key]} and {d}; remove one")
        found[key] = d
    counts = sorted({n for _, n in found})
    if len(counts) != 1:
        raise PipelineError(f"{shard_dir}: no shards" if not counts else
                            f"{shard_dir}: shards of different splits (N = {', '.join(map(str, counts))}); "
                            "keep one split's shards")
    n = counts[0]
    missing = [f"{k}/{n}" for k in range(n) if (k, n) not in found]
    if missing:
        raise PipelineError(f"{shard_dir}: shard {', '.join(missing)} missing ({len(found)} of {n} there)")
    where: dict[int, Path] = {}
    for k, part in enumerate(split(specs, n)):
        for s in part:
            name = f"{s['index']:06d}"
            for f in (f"rgb/{name}.png", f"id/{name}.png", f"meta/{name}.json"):
                if not (found[(k, n)] / f).is_file():
                    raise PipelineError(f"{found[(k, n)]}: {f} missing (an incomplete shard); render it again")
            where[s["index"]] = found[(k, n)]
    return where
