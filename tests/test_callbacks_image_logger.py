"""vaelab.callbacks.image_logger: a short run gets pictures of its final model."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import SHORT_RUN_EPOCHS as EPOCHS
from vaelab.callbacks.image_logger import PRIOR_SAMPLES, RECONSTRUCTIONS
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.plots.grids import TARGET_IMAGE_SIDE


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
