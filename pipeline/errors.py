"""User-facing errors: one line, no traceback, exit status 2."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class PipelineError(Exception):
    """A problem with the user's input (params, files, data). Printed as one line."""


def cli(fn: Callable[[], T]) -> Callable[[], T]:
    """Wrap a stage ``main`` so PipelineError prints one line and exits with status 2."""

    @functools.wraps(fn)
    def wrapper() -> T:
        try:
            return fn()
        except PipelineError as exc:
            msg = " ".join(str(exc).split())
            print(f"error: {msg}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
