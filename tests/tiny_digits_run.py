"""A digits run small enough for a unit test (2 training steps per epoch), the refusal
vaelab-train gives for a config, and a small checkpoint: shared by the tests of the config
checks, checkpoints, the run lock, the CLI's error handling and the atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import FAST, compose_config
from vaelab.errors import VaelabError
from vaelab.train import train

#: a digits run small enough for a unit test: 2 training steps per epoch
DIGITS = [
    *FAST,
    "data=digits",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.image_logger=null",
    "callbacks.encoding_snapshot=null",
    "callbacks.hparams_logger=null",
    "logger=csv",
]


def digits_config(tmp_path: Path, *overrides: str, name: str = "run"):
    return compose_config([*DIGITS, *overrides], tmp_path / name)


def refused(cfg) -> str:
    with pytest.raises(VaelabError) as err:
        train(cfg)
    return str(err.value)


def small_checkpoint(step: int, size: int = 1000) -> dict:
    return {"state_dict": {"w": torch.full((size,), float(step))}, "global_step": step}
