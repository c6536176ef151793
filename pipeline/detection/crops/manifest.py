"""The crop manifest: one row per crop with source image, annotation id, centre, angle and size."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd

from pydantic import Field

from pipeline.errors import PipelineError
from pipeline.io.paths import inside
from pipeline.io.tables import CsvRecord, Finite, read_csv_records

COLUMNS = ["crop_file", "source_image", "image_id", "ann_id", "cx", "cy", "angle", "size"]
MANIFEST = "manifest.csv"


def write_manifest(folder: Path, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.to_csv(folder / MANIFEST, index=False, float_format="%.6f")
    return df


class CropRow(CsvRecord):
    """One manifest row (the schema behind ``read_manifest``)."""

    crop_file: Annotated[str, Field(min_length=1)]
    source_image: str
    image_id: int
    ann_id: Annotated[int, Field(gt=0)]
    cx: Finite
    cy: Finite
    angle: Finite
    size: Annotated[int, Field(gt=0)]


def read_manifest(folder: Path) -> pd.DataFrame:
    """Load ``folder/manifest.csv`` by its schema (types per row and column, one line naming both); every
    crop file it names must exist inside ``folder``."""
    path = Path(folder) / MANIFEST
    rows = read_csv_records(path, CropRow, "crop manifest", allow_empty=True)
    for i, r in enumerate(rows):
        if not inside(Path(folder), r.crop_file, f"{path}: row {i + 2} crop_file").is_file():
            raise PipelineError(f"{path}: crop file {Path(folder) / r.crop_file} does not exist")
    return pd.DataFrame([{c: getattr(r, c) for c in COLUMNS} for r in rows], columns=COLUMNS)
