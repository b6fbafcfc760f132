"""Progress of one long stage of work (an evaluation metric, the IW-NLL pass, a sweep read),
shown as training shows its own: a Rich bar on a terminal, plain flushed lines in a file or
a SLURM log.

Every stage goes through :func:`stage`: it says the amount of work when the stage starts,
and, after its second piece of work (a short timed probe, e.g. one batch; the first is left
out as warm-up), how long the whole stage will take on this machine at that rate, and how long
the alternatives given would take (e.g. ``eval.disentanglement.sizes=quick``)::

    β-VAE score: 1,920,000 encodings
    β-VAE score: about 9:12 on cpu (eval.disentanglement.sizes=quick: about 0:41)
    β-VAE score: 38% (729,600 / 1,920,000 encodings)  3:30 elapsed  ETA 5:41
    β-VAE score: done in 8:58
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal, TextIO, TypeVar

Item = TypeVar("Item")
Mode = Literal["rich", "lines", "silent"]

#: seconds between two plain progress lines
LINE_INTERVAL = 30.0


def duration(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``; ``?`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def default_mode(stream: TextIO | None = None) -> Mode:
    """``rich`` where the output is a terminal, else ``lines``."""
    stream = stream or sys.stdout
    return "rich" if stream.isatty() else "lines"


class Stage:
    """One stage's counter; call :meth:`advance` after each piece of work (or iterate with
    :meth:`track`). The second piece of work is the probe the estimate comes from."""

    def __init__(
        self,
        name: str,
        total: int,
        unit: str,
        where: str,
        alternatives: Mapping[str, int],
        mode: Mode,
        stream: TextIO,
        line_interval: float,
    ) -> None:
        self.name, self.total, self.unit, self.where = name, int(total), unit, where
        self.alternatives = dict(alternatives)
        self.mode, self.stream, self.line_interval = mode, stream, line_interval
        self.done = 0
        self.started = time.perf_counter()
        self._last_line = self.started
        self._estimated = False
        self._measured = 0.0
        #: (seconds, units) at the end of the first piece of work: the warm-up
        self._first = (0.0, 0)
        self._bar = None
        self._task = None

    # -- output ---------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.mode == "silent":
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def _start(self) -> None:
        self._say(f"{self.name}: {self.total:,} {self.unit}")
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=self.total)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _finish(self) -> None:
        self._stop_bar()
        self._say(f"{self.name}: done in {duration(self.elapsed)}")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def seconds_for(self, amount: int) -> float:
        """The time ``amount`` units take at this stage's rate up to its last advance, the
        first piece of work (warm-up) left out once there are two."""
        since_seconds, since_done = self._first
        if self.done > since_done > 0:
            return amount * (self._measured - since_seconds) / (self.done - since_done)
        if self.done <= 0:
            return math.nan
        return amount * self._measured / self.done

    def _estimate(self) -> None:
        text = f"{self.name}: about {duration(self.seconds_for(self.total))} on {self.where}"
        others = [
            f"{label}: about {duration(self.seconds_for(amount))}"
            for label, amount in self.alternatives.items()
        ]
        self._say(text + (f" ({'; '.join(others)})" if others else ""))

    # -- counting -------------------------------------------------------------------------
    def advance(self, amount: int = 1) -> None:
        """``amount`` more units are done."""
        first = self.done == 0
        self.done += int(amount)
        self._measured = self.elapsed
        if first:
            self._first = (self._measured, self.done)
        elif not self._estimated and self.done < self.total:
            self._estimated = True
            self._estimate()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.perf_counter()
        if now - self._last_line < self.line_interval or self.done >= self.total:
            return
        self._last_line = now
        remaining = self.seconds_for(self.total - self.done)
        self._say(
            f"{self.name}: {100 * self.done / max(self.total, 1):.0f}% "
            f"({self.done:,} / {self.total:,} {self.unit})  {duration(self.elapsed)} elapsed  "
            f"ETA {duration(remaining)}"
        )

    def track(
        self, items: Iterable[Item], size: Callable[[Item], int] | None = None
    ) -> Iterator[Item]:
        """Yield ``items``, advancing by ``size(item)`` (default 1) once the caller has
        processed each (when it asks for the next one)."""
        for item in items:
            yield item
            self.advance(1 if size is None else size(item))


@contextmanager
def stage(
    name: str,
    total: int,
    unit: str,
    *,
    where: str = "this CPU",
    alternatives: Mapping[str, int] | None = None,
    mode: Mode | None = None,
    stream: TextIO | None = None,
    line_interval: float = LINE_INTERVAL,
) -> Iterator[Stage]:
    """A :class:`Stage` of ``total`` ``unit`` named ``name``, shown in ``mode`` (default: a
    Rich bar on a terminal, lines elsewhere). ``alternatives``: label → amount of work,
    estimated beside the stage's own (e.g. the same stage at smaller sizes)."""
    stream = stream or sys.stdout
    progress = Stage(
        name,
        total,
        unit,
        where,
        alternatives or {},
        mode or default_mode(stream),
        stream,
        line_interval,
    )
    progress._start()
    try:
        yield progress
    except BaseException:
        progress._stop_bar()
        raise
    progress._finish()
