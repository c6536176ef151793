"""User-facing errors: one line, no traceback, exit status 2."""

from __future__ import annotations

import errno
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


def disk_full(exc: OSError) -> PipelineError:
    """A full disk (errno 28) as one line naming the path, where the OS said which."""
    where = f" writing {exc.filename}" if exc.filename else ""
    return PipelineError(f"no space left on device{where} (errno {errno.ENOSPC}); free some space and rerun")


def cli(fn: Callable[[], T]) -> Callable[[], T]:
    """Wrap a stage ``main`` so PipelineError (and a full disk) prints one line and exits with status 2."""

    @functools.wraps(fn)
    def wrapper() -> T:
        try:
            try:
                return fn()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise disk_full(exc) from None
        except PipelineError as exc:
            msg = " ".join(str(exc).split())
            print(f"error: {msg}", file=sys.stderr)
            if os.environ.get(ERROR_FILE_ENV):
                try:
                    with open(os.environ[ERROR_FILE_ENV], "w") as fh:
                        fh.write(msg + "\n")
                except OSError:
                    pass  # the message is on stderr; a full disk may refuse this copy
            raise SystemExit(2) from None

    return wrapper
