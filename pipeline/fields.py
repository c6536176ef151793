"""Params dataclasses: fields with validation metadata and the validator.

Shared by ``pipeline.params`` and every domain's params module (which ``pipeline.params`` imports).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from typing import Any, Callable, Union

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
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        try:
            return _convert(key, inner, value)
        except PipelineError:
            raise _fail(key, tp, value) from None
    if dataclasses.is_dataclass(tp):
        return parse_section(tp, value, key)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise _fail(key, tp, value)
        return tuple(_convert(f"{key}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _fail(key, tp, value)
        return [_convert(f"{key}[{i}]", inner, v) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(key, tp, value)
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(key, tp, value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, tp, value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(key, tp, value)
        return value
    raise TypeError(f"unsupported params type {tp} at {key}")


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
