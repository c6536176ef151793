"""The crop manifest: one row per crop with source image, annotation id, centre, angle and size."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineError

COLUMNS = ["crop_file", "source_image", "image_id", "ann_id", "cx", "cy", "angle", "size"]
MANIFEST = "manifest.csv"


def write_manifest(folder: Path, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.to_csv(folder / MANIFEST, index=False, float_format="%.6f")
    return df


def read_manifest(folder: Path) -> pd.DataFrame:
    """Load ``folder/manifest.csv``; every crop file it names must exist."""
    path = Path(folder) / MANIFEST
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise PipelineError(f"{path}: crop manifest not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: malformed crop manifest ({type(exc).__name__})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise PipelineError(f"{path}: missing column(s) {', '.join(missing)}")
    for f in df["crop_file"]:
        if not (Path(folder) / f).is_file():
            raise PipelineError(f"{path}: crop file {Path(folder) / f} does not exist")
    return df
