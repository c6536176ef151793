"""User CSV files: rows of strings, then typed records by a pydantic schema, with one-line errors that name
the file, the row (its line in the file) and the column."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from pipeline.errors import PipelineError

Finite = Annotated[float, Field(allow_inf_nan=False)]
M = TypeVar("M", bound=BaseModel)


def read_csv_rows(path: Path, required: tuple[str, ...] = (), what: str = "CSV", hint: str = "",
                  allow_empty: bool = False) -> list[dict[str, str]]:
    """Every row of ``path`` as a dict; PipelineError when it is missing, unreadable, empty (unless
    ``allow_empty``), lacks a ``required`` column, or has a row longer or shorter than its header.

    ``what`` names the file's role in messages ("CSV manifest"); ``hint`` is appended to the missing-column one.
    """
    if not Path(path).is_file():
        raise PipelineError(f"{path}: {what} not found")
    try:
        with Path(path).open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PipelineError(f"{path}: unreadable {what} ({exc})") from None
    if not rows and not (allow_empty and header):
        raise PipelineError(f"{path}: {what} has no rows")
    missing = [c for c in required if c not in header]
    if missing:
        raise PipelineError(f"{path}: {what} lacks column {missing[0]!r}{f' ({hint})' if hint else ''}")
    for i, row in enumerate(rows):
        if None in row:  # csv.DictReader's key for fields beyond the header
            raise PipelineError(f"{path}: row {i + 2} has more fields than the header")
        if any(v is None for v in row.values()):  # ... and its value for fields the row lacks
            raise PipelineError(f"{path}: row {i + 2} has fewer fields than the header "
                                f"(no {next(k for k, v in row.items() if v is None)!r})")
    return rows


class CsvRecord(BaseModel):
    """Base of a CSV row schema: values arrive as strings and are parsed to the field types (lax mode, so
    "1.5" is a float), extra columns are allowed."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def read_csv_records(path: Path, model: type[M], what: str = "CSV", hint: str = "", allow_empty: bool = False
                     ) -> list[M]:
    """``path``'s rows validated as ``model``: a missing column, a short row or a value of the wrong type
    (non-numeric, NaN, inf) is one PipelineError naming the file, the row's line and the column."""
    columns = tuple(f.alias or name for name, f in model.model_fields.items() if f.is_required())
    rows = read_csv_rows(path, columns, what, hint, allow_empty)
    try:
        return _adapter(model).validate_python(rows)
    except ValidationError as exc:
        err = exc.errors()[0]
        row, col = err["loc"][0], (err["loc"][1] if len(err["loc"]) > 1 else "?")
        raise PipelineError(f"{path}: row {int(row) + 2} column {col!r}: {err['msg']}, got {err['input']!r:.40}") from None


@lru_cache(maxsize=None)
def _adapter(model: type[BaseModel]) -> TypeAdapter:
    return TypeAdapter(list[model])


@lru_cache(maxsize=None)
def numeric_columns(columns: tuple[str, ...]) -> type[CsvRecord]:
    """A schema whose ``columns`` are required finite numbers (e.g. a sensor recording's axes)."""
    fields: dict[str, Any] = {f"c{i}": (Finite, Field(alias=c)) for i, c in enumerate(columns)}
    return create_model("NumericRow", __base__=CsvRecord, **fields)
