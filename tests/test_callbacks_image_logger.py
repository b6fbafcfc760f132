"""vaelab.callbacks.image_logger: a short run gets pictures of its final model, and the
training pictures follow the same plan as vaelab-eval's (discrete traversals, codes on their
manifold)."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import SHORT_RUN_EPOCHS as EPOCHS
from vaelab.callbacks.image_logger import PRIOR_SAMPLES, RECONSTRUCTIONS, ImageLogger
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.models.discrete import DiscreteVAE
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.plots.grids import TARGET_IMAGE_SIDE
from vaelab.plots.pictures import discrete_traversal_grid
from vaelab.plots.policy import picture_plan
from vaelab.posteriors.categorical import CategoricalPosterior
from vaelab.posteriors.wrapped_normal import WrappedNormalPosterior
from vaelab.priors.categorical import CategoricalPrior
from vaelab.priors.wrapped_normal import WrappedNormalPrior


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


def log_pictures_of(model, tmp_path, batches: int = 3, batch_size: int = 5) -> ImageLogger:
    """Feed ``batches`` validation batches of 4×4 images to an ImageLogger (num_codes 12, 4
    reconstructions) and let it draw the final model's pictures into ``tmp_path``."""
    logger = ImageLogger(num_reconstructions=4, num_samples=4, num_codes=12, png_dir=tmp_path)
    trainer = SimpleNamespace(
        sanity_checking=False,
        is_global_zero=True,
        current_epoch=0,
        fast_dev_run=False,
        loggers=[],
        global_step=1,
    )
    module = SimpleNamespace(model=model.eval(), device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    for index in range(batches):
        images = torch.rand(batch_size, *SMALL_SHAPE, generator=generator)
        labels = torch.randint(10, (batch_size,), generator=generator)
        logger.on_validation_batch_end(trainer, module, None, (images, labels), index)
    logger.on_validation_epoch_end(trainer, module)
    return logger


SMALL_SHAPE = (1, 4, 4)
SMALL_NET = functools.partial(mlp, hidden_dims=[8])


def test_training_draws_the_plans_discrete_traversals_and_continuous_traversals(tmp_path):
    """A joint code (one Gaussian number, two 3-way variables): the plan asks for traversals
    of the continuous dimension and discrete traversals; training draws both, from the codes
    of the first validation loop (12 of the 15 images: up to num_codes)."""
    torch.manual_seed(0)
    model = DiscreteVAE(
        net=SMALL_NET,
        num_variables=2,
        input_shape=SMALL_SHAPE,
        posterior=CategoricalPosterior(num_categories=3, continuous_dim=1),
        prior=CategoricalPrior(),
    )
    plan = picture_plan(model)
    assert (plan.traversals, plan.discrete_traversals, plan.latent_geometry) == (True, True, False)
    logger = log_pictures_of(model, tmp_path)
    assert len(logger._inputs) == 12
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        f"{name}_epoch000.png"
        for name in ("discrete_traversals", "latent_traversals", "prior_samples", "reconstructions")
    ]
    code = model.latent_codes(logger._inputs, logger._labels).mean[0]
    expected = discrete_traversal_grid(model, code)  # 2 rows × 3 categories of 4×4 images
    with Image.open(tmp_path / "discrete_traversals_epoch000.png") as picture:
        assert picture.size == (expected.shape[2], expected.shape[1])
        drawn = torch.from_numpy(np.array(picture.convert("L"))).float() / 255
    torch.testing.assert_close(drawn, expected[0], atol=1 / 255, rtol=0)
    with Image.open(tmp_path / "latent_traversals_epoch000.png") as picture:
        assert picture.size[1] < picture.size[0]  # one row (one continuous dimension), 11 values


def test_training_draws_codes_in_the_poincare_disc(tmp_path):
    """Wrapped normals on the 2-D Poincaré ball: the plan asks for the latent-geometry picture,
    neither the decoded 2-D grid nor traversals (a sweep through R² leaves the ball); training
    draws it."""
    torch.manual_seed(0)
    model = VAE(
        SMALL_NET,
        2,
        SMALL_SHAPE,
        posterior=WrappedNormalPosterior(curvature=1.0),
        prior=WrappedNormalPrior(curvature=1.0),
    )
    plan = picture_plan(model)
    assert (plan.latent_geometry, plan.traversals, plan.latent_manifold) == (True, False, False)
    log_pictures_of(model, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        f"{name}_epoch000.png" for name in ("latent_geometry", "prior_samples", "reconstructions")
    ]
