"""Params dataclasses: fields with validation metadata and the validator.

Shared by ``pipeline.params`` and every domain's params module (which ``pipeline.params`` imports).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import field
from typing import Any, Callable, Union

from pydantic import TypeAdapter

from pipeline.errors import PipelineError


def _c(default: Any, check: Callable[[Any], bool] | None = None, desc: str = "", choices: tuple = ()) -> Any:
    """A dataclass field with a validation predicate and its human description."""
    meta = {"check": check, "desc": desc, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


POS = (lambda v: v > 0, "> 0")
NONNEG = (lambda v: v >= 0, ">= 0")
UNIT = (lambda v: 0 <= v <= 1, "in [0, 1]")
DISTINCT = (lambda v: len(v) > 0 and len(set(v)) == len(v), "(non-empty, no repeats)")
DEVICES = ("auto", "cuda", "mps", "cpu")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{_type_name(args[0])} or null"
    if origin is tuple:
        return "list of " + ", ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _fail(key: str, tp: Any, value: Any, desc: str = "") -> PipelineError:
    want = _type_name(tp) + (f" {desc}" if desc else "")
    return PipelineError(f"{key}: expected {want}, got {value!r}")


def _convert(key: str, tp: Any, value: Any) -> Any:
    """``value`` (as YAML gave it) as ``tp``: nested sections go through :func:`parse_section` (unknown keys,
    dotted names); every other type is checked by pydantic in strict mode on the value's JSON form, so
    YAML lists become tuples where asked, ints are floats where asked, and "2", 2.5 or true are not ints;
    .nan and .inf are refused everywhere."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return parse_section(tp, value, key)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            return parse_section(inner[0], value, key)
    if origin is dict:  # named configs/variants: their values are checked by their section, naming each key
        if not isinstance(value, dict):
            raise _fail(key, tp, value)
        return dict(value)
    try:
        return _adapter(tp).validate_json(json.dumps(value, allow_nan=False), strict=True)  # NaN/inf: no
    except (TypeError, ValueError):  # ValidationError is a ValueError; TypeError: not JSON-shaped (a date)
        raise _fail(key, tp, value) from None


@functools.lru_cache(maxsize=None)
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def parse_section(cls: type, data: Any, prefix: str) -> Any:
    """Validate a mapping into the frozen dataclass ``cls``; keys are reported as ``prefix.key``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PipelineError(f"{prefix}: expected mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PipelineError(f"{prefix}.{unknown[0]}: unknown key (known: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        if name not in data:
            continue
        key, tp = f"{prefix}.{name}", hints[name]
        choices, check = f.metadata.get("choices"), f.metadata.get("check")
        try:
            value = _convert(key, tp, data[name])
        except PipelineError as exc:
            if str(exc).startswith(f"{key}: expected") and f.metadata.get("desc"):
                raise _fail(key, tp, data[name], f.metadata["desc"]) from None
            raise
        if choices and value not in choices:
            raise PipelineError(f"{key}: expected one of {', '.join(map(str, choices))}, got {value!r}")
        if check is not None and value is not None and not check(value):
            raise _fail(key, tp, data[name], f.metadata.get("desc", ""))
        values[name] = value
    return cls(**values)
