"""Dataclass fields with validation metadata, shared by every params section module."""

from __future__ import annotations

from dataclasses import field
from typing import Any, Callable


def _c(default: Any, check: Callable[[Any], bool] | None = None, desc: str = "", choices: tuple = ()) -> Any:
    """A dataclass field with a validation predicate and its human description."""
    meta = {"check": check, "desc": desc, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


POS = (lambda v: v > 0, "> 0")
NONNEG = (lambda v: v >= 0, ">= 0")
UNIT = (lambda v: 0 <= v <= 1, "in [0, 1]")
DEVICES = ("auto", "cuda", "mps", "cpu")
