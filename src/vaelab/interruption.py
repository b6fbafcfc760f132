"""What Ctrl-C says: the stage it stopped, what is kept on disk, and how to go on.

Entry points name their stages as they go (:func:`enter_stage`); when a ``KeyboardInterrupt``
reaches :func:`vaelab.cli.run_reporting_errors` (or Hydra's set-up), it prints
:func:`interrupted_line` — ``vaelab: interrupted during <stage>; kept: …; resume with: …`` —
and exits with status 130 (128 + SIGINT, what a shell reports for Ctrl-C), no traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT)
INTERRUPTED_EXIT_STATUS = 130


@dataclass
class Stage:
    """The stage an entry point is in; ``kept`` (what is on disk) and ``resume`` (the command
    that goes on) are strings, or callables asked when the interrupt arrives."""

    name: str = "start-up"
    kept: Callable[[], str] | str | None = None
    resume: Callable[[], str] | str | None = None


_current = Stage()


def enter_stage(
    name: str,
    kept: Callable[[], str] | str | None = None,
    resume: Callable[[], str] | str | None = None,
) -> None:
    """Record that the entry point now is in stage ``name``; ``kept``/``resume`` stay as they
    were unless given."""
    _current.name = name
    if kept is not None:
        _current.kept = kept
    if resume is not None:
        _current.resume = resume


def reset_stage(name: str = "start-up") -> None:
    """Start over (a new command, or the next job of a sweep)."""
    global _current
    _current = Stage(name)


def current_stage() -> Stage:
    return _current


def _asked(value: Callable[[], str] | str | None) -> str:
    try:
        return (value() if callable(value) else value) or ""
    except Exception:  # never fail while reporting an interrupt
        return ""


def interrupted_line() -> str:
    """The one line Ctrl-C prints."""
    kept = _asked(_current.kept)
    resume = _asked(_current.resume) or "run the same command again"
    return (
        f"vaelab: interrupted during {_current.name}; kept: {kept or 'nothing new'}; "
        f"resume with: {resume}"
    )
