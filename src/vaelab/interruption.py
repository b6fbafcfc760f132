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
    """The stage an entry point is in; ``kept`` is asked when the interrupt arrives (what is on
    disk then), ``resume`` is the command that goes on."""

    name: str = "start-up"
    kept: Callable[[], str] | None = None
    resume: str | None = None


_current = Stage()


def enter_stage(
    name: str, kept: Callable[[], str] | None = None, resume: str | None = None
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


def interrupted_line() -> str:
    """The one line Ctrl-C prints."""
    try:
        kept = _current.kept() if _current.kept is not None else ""
    except Exception:  # never fail while reporting an interrupt
        kept = ""
    resume = _current.resume or "run the same command again"
    return (
        f"vaelab: interrupted during {_current.name}; kept: {kept or 'nothing new'}; "
        f"resume with: {resume}"
    )
