"""How entry points report a user's mistake: one ``vaelab: error: …`` line, no traceback.

In a multirun, a failing job must not stop or lose the others: its error (with traceback) is
written to ``<job dir>/error.txt`` and the job returns NaN; :mod:`vaelab.sweep_summary` lists
the failed jobs when the sweep ends and exits non-zero.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.errors import InstantiationException

from vaelab.errors import VaelabError

T = TypeVar("T")
ERROR_FILE = "error.txt"


def user_error_message(err: BaseException) -> str | None:
    """The message for an error the user can fix, or None for a bug (keep its traceback)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, VaelabError):
            return str(current)
        if isinstance(current, ValueError) and isinstance(err, InstantiationException):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


def run_reporting_errors(
    task: Callable[[], T], output_dir: str | Path | None = None, in_sweep: bool = False
) -> T | float:
    """Run ``task``. A user error becomes one line on stderr and exit status 1
    (``HYDRA_FULL_ERROR=1`` re-raises it with the full traceback). In a sweep (``in_sweep``)
    any error is recorded in ``<output_dir>/error.txt`` and NaN is returned instead."""
    error_file = Path(output_dir, ERROR_FILE) if output_dir is not None else None
    if error_file is not None and error_file.exists():
        error_file.unlink()  # a stale error of an earlier attempt of this job
    try:
        return task()
    except Exception as err:
        message = user_error_message(err)
        if error_file is not None and error_file.parent.is_dir():
            summary = message or f"{type(err).__name__}: {err}"
            error_file.write_text(f"{summary}\n\n{traceback.format_exc()}")
        if in_sweep:
            print(
                f"vaelab: error in this job (recorded in {error_file}): "
                f"{message or type(err).__name__ + ': ' + str(err)}",
                file=sys.stderr,
            )
            return math.nan
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"vaelab: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
