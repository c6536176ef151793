"""User-facing errors: one line, no traceback, exit status 2."""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, TypeVar

T = TypeVar("T")

# When set (by a flow running the stage), the one-line message is also written to this file, so the
# orchestrator can show the stage's own error instead of DVC's "failed to reproduce".
ERROR_FILE_ENV = "PIPELINE_ERROR_FILE"


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
            if os.environ.get(ERROR_FILE_ENV):
                with open(os.environ[ERROR_FILE_ENV], "w") as fh:
                    fh.write(msg + "\n")
            raise SystemExit(2) from None

    return wrapper
