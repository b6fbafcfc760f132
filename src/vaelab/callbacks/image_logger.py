"""Logs the pictures of :func:`~vaelab.plots.policy.picture_plan` (the plan vaelab-eval draws
from) to TensorBoard and PNG while training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import save_image
from typing_extensions import override

from vaelab.evaluation.active_units import active_units
from vaelab.plots.figures import figure_to_array
from vaelab.plots.grids import (
    class_conditional_sample_grid,
    latent_manifold_grid,
    prior_sample_grid,
    reconstruction_grid,
)
from vaelab.plots.latent_geometry import latent_geometry_figure
from vaelab.plots.pictures import (
    at_most_probable_categories,
    discrete_traversal_grid,
    traversal_dims,
    traversal_grid,
)
from vaelab.plots.policy import PicturePlan, draw_unless_missing, picture_plan
from vaelab.schema import PositiveFloat, PositiveInt, Range, checked_arguments

RECONSTRUCTIONS = "images/reconstructions"
PRIOR_SAMPLES = "images/prior_samples"
LATENT_MANIFOLD = "images/latent_manifold"
CLASS_SAMPLES = "images/class_conditional_samples"
LATENT_TRAVERSALS = "images/latent_traversals"
DISCRETE_TRAVERSALS = "images/discrete_traversals"
LATENT_GEOMETRY = "images/latent_geometry"


@checked_arguments("callbacks.image_logger")
class ImageLogger(L.Callback):
    """Every ``every_n_epochs`` validation epochs and after the last one (rank 0 only), the
    grids of :func:`~vaelab.plots.policy.picture_plan`, the plan vaelab-eval draws from:
    validation inputs above their reconstructions, prior samples, one row of
    ``samples_per_class`` samples per class (a class-conditional model), the decoded latent
    manifold over [−span, span]² (2-D codes), the first validation code's traversals (its
    ``traversal_max_dims`` most active continuous dimensions over ``traversal_steps`` values in
    [−traversal_span, traversal_span]) and discrete traversals (each categorical variable set
    to each category), and the codes of up to ``num_codes`` validation images on their
    manifold (sphere, Poincaré disc). Codes come from the first validation loop's batches.
    Images go to
    every TensorBoard logger and, if ``png_dir`` is set, to ``<png_dir>/<tag>_epoch<NNN>.png``.
    A run that ends between two due epochs (2 epochs with every_n_epochs 10, early stopping, a
    step limit) still gets the pictures of its final model.
    """

    def __init__(
        self,
        every_n_epochs: PositiveInt = 1,
        num_reconstructions: PositiveInt = 16,
        num_samples: PositiveInt = 64,
        manifold_points: Annotated[int, Range(ge=2)] = 20,
        manifold_span: float = 3.0,
        png_dir: str | None = None,
        samples_per_class: PositiveInt = 10,
        traversal_steps: Annotated[int, Range(ge=2)] = 11,
        traversal_span: PositiveFloat = 3.0,
        traversal_max_dims: PositiveInt = 10,
        num_codes: PositiveInt = 500,
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.num_reconstructions = num_reconstructions
        self.num_samples = num_samples
        self.manifold_points = manifold_points
        self.manifold_span = manifold_span
        self.png_dir = Path(png_dir) if png_dir else None
        self.samples_per_class = samples_per_class
        self.traversal_steps = traversal_steps
        self.traversal_span = traversal_span
        self.traversal_max_dims = traversal_max_dims
        self.num_codes = num_codes
        #: the first validation loop's inputs (and labels), up to the pictures' needs
        self._inputs: Tensor | None = None
        self._labels: Tensor | None = None
        self._collecting = True
        self._last_validated_epoch: int | None = None
        self._last_written_epoch: int | None = None

    @override
    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        wanted = max(self.num_reconstructions, self.num_codes)
        held = 0 if self._inputs is None else len(self._inputs)
        if not self._collecting or held >= wanted:
            return
        inputs = batch[0][: wanted - held].detach().clone()
        labels = batch[1] if len(batch) > 1 else None
        labels = labels[: wanted - held].detach().clone() if labels is not None else None
        self._inputs = inputs if self._inputs is None else torch.cat([self._inputs, inputs])
        if labels is not None:
            self._labels = labels if self._labels is None else torch.cat([self._labels, labels])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._collecting = False
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0 or trainer.fast_dev_run
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._last_validated_epoch = trainer.current_epoch
        if due:
            self._log_images(trainer, pl_module, trainer.current_epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Force the final model's pictures if the last validated epoch was not due."""
        epoch = self._last_validated_epoch
        if trainer.is_global_zero and epoch is not None and epoch != self._last_written_epoch:
            self._log_images(trainer, pl_module, epoch)

    def _log_images(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> None:
        if self._inputs is None:
            return
        model = pl_module.model
        labels = self._labels.to(pl_module.device) if self._labels is not None else None
        was_training = model.training
        model.eval()  # after training (on_train_end) the model is back in training mode
        plan = picture_plan(model)
        grids = {}
        inputs = self._inputs.to(pl_module.device)
        if plan.reconstructions:
            count = self.num_reconstructions
            shown_labels = labels[:count] if labels is not None else None
            grids[RECONSTRUCTIONS] = reconstruction_grid(model, inputs[:count], shown_labels)
        if plan.samples:
            samples, _ = draw_unless_missing(lambda: prior_sample_grid(model, self.num_samples))
            if samples is not None:
                grids[PRIOR_SAMPLES] = samples
        if plan.class_rows:
            grids[CLASS_SAMPLES] = class_conditional_sample_grid(model, self.samples_per_class)
        if plan.latent_manifold:
            grids[LATENT_MANIFOLD] = latent_manifold_grid(
                model, self.manifold_points, self.manifold_span
            )
        if plan.traversals or plan.discrete_traversals or plan.latent_geometry:
            grids |= self._code_pictures(model, plan, inputs, labels)
        model.train(was_training)
        self._write(trainer, {tag: grid.float().cpu() for tag, grid in grids.items()}, epoch)
        self._last_written_epoch = epoch

    @torch.no_grad()
    def _code_pictures(
        self, model, plan: PicturePlan, inputs: Tensor, labels: Tensor | None
    ) -> dict[str, Tensor]:
        """The plan's pictures of codes: traversals, discrete traversals, latent geometry."""
        labels = labels[: self.num_codes] if labels is not None else None
        codes = model.latent_codes(inputs[: self.num_codes], labels).mean
        blocks = model.latent_structure.categorical_blocks
        label = labels[0] if labels is not None and plan.class_rows else None
        grids = {}
        if plan.traversals:
            activity = active_units(codes.float()).activity if len(codes) > 1 else None
            dims = traversal_dims(
                activity,
                plan.code_dim,
                self.traversal_max_dims,
                model.latent_structure.continuous_dims,
            )
            values = torch.linspace(
                -self.traversal_span, self.traversal_span, self.traversal_steps
            ).to(codes)
            code = at_most_probable_categories(codes[0], blocks)
            grids[LATENT_TRAVERSALS] = traversal_grid(model, code, dims, values, label)
        if plan.discrete_traversals:
            grids[DISCRETE_TRAVERSALS] = discrete_traversal_grid(model, codes[0], label)
        if plan.latent_geometry:
            classes = labels if labels is not None and labels.ndim == 1 else None  # not factors
            figure = latent_geometry_figure(codes, classes, model.latent_geometry)
            grids[LATENT_GEOMETRY] = (
                torch.from_numpy(figure_to_array(figure)).permute(2, 0, 1) / 255
            )
        return grids

    def _write(self, trainer: L.Trainer, grids: dict[str, Tensor], epoch: int) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for tag, grid in grids.items():
                    logger.experiment.add_image(tag, grid, global_step=trainer.global_step)
        if self.png_dir is not None:
            self.png_dir.mkdir(parents=True, exist_ok=True)
            for tag, grid in grids.items():
                name = f"{tag.split('/')[-1]}_epoch{epoch:03d}.png"
                save_image(grid, self.png_dir / name)

    def state_dict(self) -> dict:
        return {}


__all__ = ["ImageLogger"]
