"""What a short run leaves for a researcher: pictures of the final model, train scalars, and
plain progress lines when stdout is not a terminal (a SLURM log, ``> file``)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import FAST, compose_config
from vaelab.callbacks.image_logger import PRIOR_SAMPLES, RECONSTRUCTIONS
from vaelab.callbacks.log_interval import adapted_interval
from vaelab.callbacks.progress import LineProgressBar, LossRichProgressBar, progress_bar
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.plots.grids import TARGET_IMAGE_SIDE
from vaelab.train import train

EPOCHS = 2
DIGITS_TRAIN_BATCHES = 15  # 1437 training images, batch 100


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A 2-epoch digits run with images due every 10 epochs and line progress every 5 steps."""
    run_dir = tmp_path_factory.mktemp("short_output") / "run"
    overrides = [o for o in FAST if not o.startswith("callbacks.progress_bar")]
    cfg = compose_config(
        [
            *overrides,
            "data=digits",
            f"trainer.max_epochs={EPOCHS}",
            "trainer.log_every_n_steps=50",
            "callbacks.image_logger.every_n_epochs=10",
            "callbacks.progress_bar.force=lines",
            "callbacks.progress_bar.every_n_steps=5",
            "test=false",
        ],
        run_dir,
    )
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        metrics = train(cfg)
    return run_dir, metrics, output.getvalue()


def test_images_written_on_the_last_epoch_of_a_short_run(digits_run):
    run_dir, _, _ = digits_run
    pngs = sorted(p.name for p in (run_dir / "images").glob("*.png"))
    last = f"epoch{EPOCHS - 1:03d}"
    # only the last epoch: the default model's 2-D latent adds the manifold
    assert pngs == [
        f"{tag}_{last}.png" for tag in ("latent_manifold", "prior_samples", "reconstructions")
    ]
    events = EventAccumulator(str(tensorboard_dir(run_dir)), size_guidance={"images": 0})
    events.Reload()
    assert {RECONSTRUCTIONS, PRIOR_SAMPLES} <= set(events.Tags()["images"])
    reconstructions = events.Images(RECONSTRUCTIONS)[-1]
    # 16 digits of 8 px upscaled ×10 in two blocks of 8 input/reconstruction pairs, labelled
    assert reconstructions.width > 8 * TARGET_IMAGE_SIDE * 0.9
    assert reconstructions.height >= 4 * TARGET_IMAGE_SIDE * 0.9


def test_short_epochs_still_log_train_scalars(digits_run):
    run_dir, _, _ = digits_run
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    # 15 batches per epoch < log_every_n_steps 50: the interval became 15 // 4 = 3
    assert len(steps) >= EPOCHS * (DIGITS_TRAIN_BATCHES // 3) - 1
    assert adapted_interval(50, 550, 4) == 50  # a long epoch keeps the configured interval


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
