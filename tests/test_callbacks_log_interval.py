"""vaelab.callbacks.log_interval: short epochs still log train scalars."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import SHORT_RUN_EPOCHS as EPOCHS
from tests.conftest import SHORT_RUN_TRAIN_BATCHES as DIGITS_TRAIN_BATCHES
from vaelab.callbacks.log_interval import adapted_interval
from vaelab.evaluation.learning_curves import tensorboard_dir


def test_short_epochs_still_log_train_scalars(digits_run):
    run_dir, _, _ = digits_run
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    # 15 batches per epoch < log_every_n_steps 50: the interval became 15 // 4 = 3
    assert len(steps) >= EPOCHS * (DIGITS_TRAIN_BATCHES // 3) - 1
    assert adapted_interval(50, 550, 4) == 50  # a long epoch keeps the configured interval
