"""User CSV files read as rows of strings, with one-line errors that name the file and the column."""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.errors import PipelineError


def read_csv_rows(path: Path, required: tuple[str, ...] = (), what: str = "CSV", hint: str = "") -> list[dict[str, str]]:
    """Every row of ``path`` as a dict; PipelineError when it is unreadable, empty, or lacks a ``required`` column.

    ``what`` names the file's role in messages ("CSV manifest"); ``hint`` is appended to the missing-column one.
    """
    try:
        with Path(path).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PipelineError(f"{path}: unreadable {what} ({exc})") from None
    if not rows:
        raise PipelineError(f"{path}: {what} has no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise PipelineError(f"{path}: {what} lacks column {missing[0]!r}{f' ({hint})' if hint else ''}")
    return rows
