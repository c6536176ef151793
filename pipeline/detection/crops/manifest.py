"""The crop manifest: one row per crop with source image, annotation id, centre, angle and size."""

from __future__ import annotations

import csv
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from pipeline.errors import PipelineError
from pipeline.io.paths import inside
from pipeline.io.tables import CsvRecord, Finite, read_csv_records

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["crop_file", "source_image", "image_id", "ann_id", "cx", "cy", "angle", "size"]
MANIFEST = "manifest.csv"


FLOAT_COLUMNS = ("cx", "cy", "angle")


def _cell(column: str, value: object) -> str:
    """The manifest's number format: the crop geometry's floats to 6 decimals, integers as integers."""
    if column in FLOAT_COLUMNS:
        return "%.6f" % float(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return str(value)


def write_manifest(folder: Path, rows: list[dict]) -> list[dict]:
    """Write ``folder/manifest.csv`` (the columns above, one row per crop) and return the rows.

    The csv module, not pandas (half a second to import for one small table); the bytes are those that
    ``DataFrame.to_csv(index=False, float_format="%.6f")`` wrote before (tests/unit/test_crops.py checks).
    """
    with open(folder / MANIFEST, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows([_cell(c, r[c]) for c in COLUMNS] for r in rows)
    return rows


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
    import pandas as pd  # the stages that read a manifest group and hash it as a DataFrame

    rows = read_csv_records(path, CropRow, "crop manifest", allow_empty=True)
    for i, r in enumerate(rows):
        if not inside(Path(folder), r.crop_file, f"{path}: row {i + 2} crop_file").is_file():
            raise PipelineError(f"{path}: crop file {Path(folder) / r.crop_file} does not exist")
    return pd.DataFrame([{c: getattr(r, c) for c in COLUMNS} for r in rows], columns=COLUMNS)
