"""How entry points report a user's mistake: one ``vaelab: error: …`` line, no traceback."""

from __future__ import annotations

import os
import sys
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


def run_reporting_errors(task: Callable[[], T], output_dir: str | Path | None = None) -> T:
    """Run ``task``; a user error becomes one line on stderr (and ``error.txt`` in the run
    dir) and exit status 1. ``HYDRA_FULL_ERROR=1`` re-raises it with the full traceback."""
    try:
        return task()
    except Exception as err:
        message = user_error_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if output_dir is not None and Path(output_dir).is_dir():
            Path(output_dir, ERROR_FILE).write_text(message + "\n")
        print(f"vaelab: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
