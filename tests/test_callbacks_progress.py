"""vaelab.callbacks.progress: plain progress lines when stdout is not a terminal (a SLURM log,
``> file``), with step and epoch numbers; the bar follows the terminal."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import SHORT_RUN_EPOCHS as EPOCHS
from tests.conftest import SHORT_RUN_TRAIN_BATCHES as DIGITS_TRAIN_BATCHES
from vaelab.callbacks.progress import (
    LineProgressBar,
    LossRichProgressBar,
    bounding_steps,
    progress_bar,
)


def test_line_progress_has_step_and_epoch_lines_with_numbers(digits_run):
    _, metrics, output = digits_run
    number = r"-?\d+\.\d+"
    epoch_lines = re.findall(
        rf"^epoch (\d)/{EPOCHS}  done in \d+:\d\d  train/loss_epoch ({number})"
        rf"  val/elbo ({number})  ({number}) it/s  ETA \d+:\d\d$",
        output,
        flags=re.MULTILINE,
    )
    assert [line[0] for line in epoch_lines] == ["1", "2"], output
    assert float(epoch_lines[-1][2]) == pytest.approx(metrics["val/elbo"], abs=0.01)
    # the end-of-epoch line shows the epoch mean of the training loss
    assert float(epoch_lines[-1][1]) == pytest.approx(metrics["train/loss_epoch"], abs=0.01)
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


class FakeClock:
    """A clock the test advances by hand (no sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_trainer(**settings):
    values = {
        "current_epoch": 0,
        "max_epochs": 50,
        "max_steps": -1,
        "global_step": 0,
        "num_training_batches": 10_000,
        "accumulate_grad_batches": 1,
        "callback_metrics": {"train/loss": torch.tensor(150.0)},
    }
    return SimpleNamespace(**{**values, **settings})


def run_batches(bar, trainer, clock, count: int, seconds_per_step: float) -> None:
    for batch_idx in range(count):
        clock.now += seconds_per_step
        trainer.global_step += 1
        bar.on_train_batch_end(trainer, None, None, None, batch_idx)


def test_a_step_based_run_reports_its_steps_rate_and_eta(capsys):
    """max_steps=200 in an epoch of 10,000 batches at 1 s a step: the rate is 1 it/s and the
    ETA counts the steps left to 200, not the epoch's batches (the bug: "epoch ETA 3:44:20",
    "55.9 it/s")."""
    clock = FakeClock()
    bar = LineProgressBar(every_n_steps=50, clock=clock)
    trainer = fake_trainer(max_steps=200)
    assert bounding_steps(trainer) == 200
    bar.on_train_epoch_start(trainer, None)
    run_batches(bar, trainer, clock, 200, seconds_per_step=1.0)
    bar.on_train_epoch_end(trainer, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "epoch 1  step 50/200  train/loss 150.00  1.0 it/s  ETA 2:30",
        "epoch 1  step 100/200  train/loss 150.00  1.0 it/s  ETA 1:40",
        "epoch 1  step 150/200  train/loss 150.00  1.0 it/s  ETA 0:50",
    ]
    assert lines[3] == "epoch 1  done in 3:20  train/loss 150.00  1.0 it/s  ETA 0:00"
    assert len(lines) == 4


def test_a_step_based_run_over_several_epochs_counts_the_run_steps(capsys):
    """200 steps of 2 s over epochs of 80 batches: the second epoch's line counts global steps
    and the ETA the steps left to max_steps."""
    clock = FakeClock()
    bar = LineProgressBar(every_n_steps=100, clock=clock)
    trainer = fake_trainer(max_steps=200, max_epochs=-1, num_training_batches=80)
    for epoch in range(2):
        trainer.current_epoch = epoch
        bar.on_train_epoch_start(trainer, None)
        run_batches(bar, trainer, clock, 80, seconds_per_step=2.0)
        bar.on_train_epoch_end(trainer, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "epoch 1  done in 2:40  train/loss 150.00  0.5 it/s  ETA 4:00",
        "epoch 2  step 100/200  train/loss 150.00  0.5 it/s  ETA 3:20",
        "epoch 2  done in 2:40  train/loss 150.00  0.5 it/s  ETA 1:20",
    ]


def test_max_steps_beyond_the_epochs_leaves_the_epoch_progress(capsys):
    """max_steps larger than max_epochs × batches: the epochs end the run, lines as before."""
    clock = FakeClock()
    bar = LineProgressBar(every_n_steps=5, clock=clock)
    trainer = fake_trainer(max_steps=10_000, max_epochs=2, num_training_batches=10)
    assert bounding_steps(trainer) is None
    bar.on_train_epoch_start(trainer, None)
    run_batches(bar, trainer, clock, 10, seconds_per_step=0.5)
    trainer.callback_metrics["train/loss_epoch"] = torch.tensor(151.25)
    bar.on_train_epoch_end(trainer, None)
    assert capsys.readouterr().out.splitlines() == [
        "epoch 1/2  step 5/10  train/loss 150.00  2.0 it/s  epoch ETA 0:02",
        "epoch 1/2  done in 0:05  train/loss_epoch 151.25  2.0 it/s  ETA 0:05",
    ]
