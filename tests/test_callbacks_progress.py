"""vaelab.callbacks.progress: plain progress lines when stdout is not a terminal (a SLURM log,
``> file``), with step and epoch numbers; the bar follows the terminal."""

from __future__ import annotations

import re

import pytest

from tests.conftest import SHORT_RUN_EPOCHS as EPOCHS
from tests.conftest import SHORT_RUN_TRAIN_BATCHES as DIGITS_TRAIN_BATCHES
from vaelab.callbacks.progress import LineProgressBar, LossRichProgressBar, progress_bar


def test_line_progress_has_step_and_epoch_lines_with_numbers(digits_run):
    _, metrics, output = digits_run
    number = r"-?\d+\.\d+"
    epoch_lines = re.findall(
        rf"^epoch (\d)/{EPOCHS}  done in \d+:\d\d  train/loss ({number})  val/elbo ({number})"
        rf"  ({number}) it/s  ETA \d+:\d\d$",
        output,
        flags=re.MULTILINE,
    )
    assert [line[0] for line in epoch_lines] == ["1", "2"], output
    assert float(epoch_lines[-1][2]) == pytest.approx(metrics["val/elbo"], abs=0.01)
    step_lines = re.findall(
        rf"^epoch \d/{EPOCHS}  step (\d+)/{DIGITS_TRAIN_BATCHES}  train/loss {number}",
        output,
        flags=re.MULTILINE,
    )
    assert step_lines.count("5") == EPOCHS, output
    assert step_lines.count("10") == EPOCHS, output
    assert "\r" not in output  # no bar redraws
    assert "\x1b[" not in output  # no colour codes


def test_progress_bar_choice_follows_the_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert isinstance(progress_bar(), LineProgressBar)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert isinstance(progress_bar(), LossRichProgressBar)
    assert isinstance(progress_bar(force="lines"), LineProgressBar)
