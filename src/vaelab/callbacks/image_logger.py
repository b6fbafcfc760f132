"""Logs reconstructions, prior samples and (2-D latent) the manifold to TensorBoard and PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import save_image
from typing_extensions import override

from vaelab.plots.grids import (
    class_conditional_sample_grid,
    latent_manifold_grid,
    prior_sample_grid,
    reconstruction_grid,
)
from vaelab.plots.policy import draw_unless_missing, picture_plan
from vaelab.schema import PositiveInt, Range, checked_arguments

RECONSTRUCTIONS = "images/reconstructions"
PRIOR_SAMPLES = "images/prior_samples"
LATENT_MANIFOLD = "images/latent_manifold"
CLASS_SAMPLES = "images/class_conditional_samples"


@checked_arguments("callbacks.image_logger")
class ImageLogger(L.Callback):
    """Every ``every_n_epochs`` validation epochs and after the last one (rank 0 only), the
    grids of :func:`~vaelab.plots.policy.picture_plan`: validation inputs above their
    reconstructions, prior samples, and either one row of ``samples_per_class`` samples per
    class (a class-conditional model) or, for 2-D codes, the decoded latent manifold over
    [−span, span]². Images go to
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
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.num_reconstructions = num_reconstructions
        self.num_samples = num_samples
        self.manifold_points = manifold_points
        self.manifold_span = manifold_span
        self.png_dir = Path(png_dir) if png_dir else None
        self.samples_per_class = samples_per_class
        self._inputs: Tensor | None = None
        self._labels: Tensor | None = None
        self._last_validated_epoch: int | None = None
        self._last_written_epoch: int | None = None

    @override
    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if batch_idx == 0 and self._inputs is None:
            self._inputs = batch[0][: self.num_reconstructions].detach().clone()
            labels = batch[1] if len(batch) > 1 else None
            self._labels = (
                labels[: self.num_reconstructions].detach().clone() if labels is not None else None
            )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
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
        if plan.reconstructions:
            inputs = self._inputs.to(pl_module.device)
            grids[RECONSTRUCTIONS] = reconstruction_grid(model, inputs, labels)
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
        model.train(was_training)
        self._write(trainer, {tag: grid.float().cpu() for tag, grid in grids.items()}, epoch)
        self._last_written_epoch = epoch

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
