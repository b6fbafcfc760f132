"""What the console shows around a run: known-irrelevant notices silenced, commands printed so
that they run as printed.

Silenced (each says nothing about a vaelab run):

- Lightning's hint to prepend ``srun`` (printed on any machine that has SLURM installed, also
  for runs meant to be local),
- Lightning's tip to install litlogger,
- the ``Total Flops`` line of the model summary when the count is 0 (no example input),
- Lightning's warning that an epoch is shorter than ``log_every_n_steps`` (vaelab adapts the
  interval: :mod:`vaelab.callbacks.log_interval`),
- the ``LeafSpec`` deprecation warning Lightning triggers inside torch's pytree module.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import sys
import warnings
from pathlib import Path

#: warning messages (regular expressions, matched at the start) that are silenced
SILENCED_WARNINGS = (
    r"The `srun` command is available on your system but is not used",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
#: Lightning loggers whose records are filtered
LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.callbacks.model_summary",
    "lightning.fabric.utilities.rank_zero",
)
ZERO_FLOPS_LINE = re.compile(r"\n\s*0\s+Total Flops[^\n]*")


class _KnownNoticeFilter(logging.Filter):
    """Drops the litlogger tip; strips a zero ``Total Flops`` line from the model summary."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "litlogger" in message or "already configured with model summary" in message:
            return False
        if "Total Flops" in message:
            record.msg, record.args = ZERO_FLOPS_LINE.sub("", message), None
        return True


_FILTER = _KnownNoticeFilter()


def silence_known_notices() -> None:
    """Install the warning and logging filters (idempotent)."""
    for pattern in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def tensorboard_command(log_dir: str | Path) -> str:
    """``tensorboard --logdir <log_dir>`` that runs as printed: the ``tensorboard`` next to
    this Python (the venv's, whether or not the venv is active), else the one on PATH."""
    beside_python = Path(sys.executable).parent / "tensorboard"
    program = str(beside_python) if beside_python.is_file() else shutil.which("tensorboard")
    launcher = (
        shlex.quote(program) if program else f"{shlex.quote(sys.executable)} -m tensorboard.main"
    )
    return f"{launcher} --logdir {shlex.quote(str(Path(log_dir).resolve()))}"


def in_multirun() -> bool:
    """True inside a job of a Hydra multirun (a sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
