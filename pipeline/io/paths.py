"""Paths named by user data (a COCO file_name, a manifest's audio column) stay inside their dataset folder."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError


def inside(root: Path, rel: str, what: str) -> Path:
    """``root/rel`` when it lies under ``root`` after resolving ``..`` and symlinks; otherwise one line
    starting with ``what`` (e.g. "train.json: image 3 file_name")."""
    if Path(rel).is_absolute():
        raise PipelineError(f"{what} {rel!r} is an absolute path; it must be relative to {root}")
    full = Path(root) / rel
    if not full.resolve().is_relative_to(Path(root).resolve()):
        raise PipelineError(f"{what} {rel!r} points outside {root}")
    return full
