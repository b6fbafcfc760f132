"""vaelab.callbacks.silent_settings: settings that silently switch off validation, the pictures
or a monitoring checkpoint are named when training starts."""

from __future__ import annotations

import math

import pytest

from tests.tiny_digits_run import digits_config
from vaelab.callbacks.silent_settings import RunLength
from vaelab.train import train

#: 10 batches per epoch, 3 epochs, validation after every epoch
USUAL = {
    "batches_per_epoch": 10.0,
    "max_epochs": 3,
    "max_steps": -1,
    "accumulate_grad_batches": 1,
    "val_check_batch": 10.0,
    "check_val_every_n_epoch": 1,
    "limit_val_batches": 1.0,
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"limit_val_batches": 0.0}, "trainer.limit_val_batches=0 turns validation off"),
        (  # the dSprites case: a step-counted interval beyond max_steps
            {
                "max_epochs": None,
                "max_steps": 200,
                "check_val_every_n_epoch": None,
                "val_check_batch": 1000.0,
            },
            "trainer.val_check_interval first validates after 1000 training batches, but the "
            "run does 200 (trainer.max_steps=200); lower trainer.val_check_interval or raise "
            "trainer.max_steps",
        ),
        (
            {"check_val_every_n_epoch": 5},
            "trainer.check_val_every_n_epoch=5 first validates after epoch 5, but the run does "
            "3 epoch(s) (trainer.max_epochs=3); lower trainer.check_val_every_n_epoch or raise "
            "trainer.max_epochs",
        ),
        (  # gradient accumulation: max_steps counts optimiser steps, not batches
            {"max_steps": 4, "accumulate_grad_batches": 2, "check_val_every_n_epoch": None},
            "the run does 8 (trainer.max_steps=4); lower trainer.val_check_interval or raise "
            "trainer.max_steps",
        ),
    ],
)
def test_settings_that_never_reach_validation_are_named(change, reason):
    why = RunLength(**{**USUAL, **change}).why_validation_never_runs()
    assert why is not None
    assert why.endswith(reason)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"check_val_every_n_epoch": 3},  # validates after the last epoch
        {"max_steps": 20, "max_epochs": None, "check_val_every_n_epoch": None},
        {"max_steps": -1, "max_epochs": -1},  # no limit: runs until stopped
    ],
)
def test_settings_that_reach_validation_pass(change):
    length = RunLength(**{**USUAL, **change})
    assert length.why_validation_never_runs() is None
    assert length.first_validation_batch <= length.total_batches or math.isinf(length.total_batches)


@pytest.mark.slow
def test_a_run_that_never_validates_says_so_at_start(tmp_path, capsys):
    """Digits, 2 batches per epoch, validation every 3 epochs, 1 epoch: named with what is lost."""
    train(digits_config(tmp_path, "trainer.check_val_every_n_epoch=3", "logger=csv"))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "vaelab: warning:" in line]
    assert warnings == [
        "vaelab: warning: validation never runs in this run: trainer.check_val_every_n_epoch=3 "
        "first validates after epoch 3, but the run does 1 epoch(s) (trainer.max_epochs=1); "
        "lower trainer.check_val_every_n_epoch or raise trainer.max_epochs. So: no val/ metrics; "
        "the checkpoint that monitors val/elbo never updates (only last.ckpt is written)"
    ]
    train(digits_config(tmp_path, name="validates"))
    assert "vaelab: warning:" not in capsys.readouterr().err
