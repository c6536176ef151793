"""User-supplied render inputs: background plates and human assets, validated up front."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io.images import load_rgb

PLATE_EXTS = (".png", ".jpg", ".jpeg")
ASSET_EXTS = (".blend", ".obj", ".fbx")


def list_inputs(folder: str | None, exts: tuple[str, ...], key: str) -> list[str] | None:
    """Sorted absolute paths of files with ``exts`` in ``folder``; None when ``folder`` is unset."""
    if not folder:
        return None
    root = Path(folder)
    if not root.is_dir():
        raise PipelineError(f"{key}: folder {root} does not exist")
    files = sorted(str(p.resolve()) for p in root.iterdir() if p.suffix.lower() in exts)
    if not files:
        raise PipelineError(f"{key}: no {'/'.join(exts)} files in {root}")
    return files


def background_plates(folder: str | None) -> list[str] | None:
    plates = list_inputs(folder, PLATE_EXTS, "render.backgrounds")
    for p in plates or []:
        load_rgb(Path(p))  # fails with the file's name if corrupt
    return plates
