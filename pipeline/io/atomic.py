"""Atomic outputs: write into a temporary sibling folder, then rename it into place."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``out``; on success it replaces ``out``, on error it is removed.

    An interrupted stage therefore never leaves a half-written ``out`` behind.
    """
    out = Path(out)
    tmp = temp_sibling(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(tmp, out)


def finite(obj: Any) -> Any:
    """NaN/inf -> None, recursively, so the JSON is standard (DVC, jq and browsers read it)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(out: Path) -> list[Path]:
    """Remove ``out``'s temporary siblings (``.<name>.tmp-<pid>``) left by a killed run: those whose
    process is gone. Returns what was removed."""
    gone = []
    for tmp in Path(out).parent.glob(f".{Path(out).name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


def temp_sibling(out: Path) -> Path:
    """``.<name>.tmp-<pid>`` beside ``out`` (its folder created), once the stale ones of killed runs are
    gone: where every atomic write of ``out`` goes first."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    return out.with_name(f".{out.name}.tmp-{os.getpid()}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write standard JSON (NaN/inf as null) to ``path`` via a temp file and rename."""
    path = Path(path)
    tmp = temp_sibling(path)
    tmp.write_text(json.dumps(finite(data), indent=1, sort_keys=False, allow_nan=False))
    os.replace(tmp, path)


def write_csv_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write dict rows (columns from the first row) as CSV via a temp file and rename."""
    import csv

    path = Path(path)
    tmp = temp_sibling(path)
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
