"""A LightningModule fitted in closed form from the training split's first two moments: one
pass over the data, no optimiser, no gradient steps (PCA, probabilistic PCA)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from vaelab.baselines.epoch_means import EpochMeans
from vaelab.baselines.moments import DataMoments
from vaelab.errors import VaelabError


class ClosedFormModule(L.LightningModule):
    """``trainer.fit`` runs one epoch: each training batch (after the datamodule's scaling and
    binarization) is added to the running moments, and after the last batch
    :meth:`fit_moments` solves for the parameters. Training then stops, whatever
    ``trainer.max_epochs`` says. Validation and test evaluate the fitted model.

    Subclasses set :attr:`metric_names` and implement :meth:`fit_moments` and
    :meth:`evaluation_values`.
    """

    metric_names: tuple[str, ...] = ()

    def __init__(self, latent_dim: int, input_shape: Sequence[int]) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        latent_dim = int(latent_dim)
        data_dim = math.prod(input_shape)
        if not 1 <= latent_dim < data_dim:
            raise ValueError(
                f"model.latent_dim must lie in 1..{data_dim - 1} (fewer "
                f"components than the {data_dim} pixels), got {latent_dim}"
            )
        self.save_hyperparameters({"latent_dim": latent_dim, "input_shape": list(input_shape)})
        self.automatic_optimization = False
        self.latent_dim = latent_dim
        self.input_shape = input_shape
        self.moments = DataMoments(data_dim)
        # how many data points the stored parameters were fitted on (0: not fitted yet)
        self.register_buffer("fitted_on", torch.zeros((), dtype=torch.float64))
        self.epoch_means = EpochMeans(self.metric_names)

    # -- what a subclass provides -----------------------------------------------------------
    def fit_moments(self, mean: Tensor, covariance: Tensor) -> None:
        """Set the parameters from the data mean [D] and ML covariance [D, D] (float64)."""
        raise NotImplementedError

    def evaluation_values(self, x: Tensor) -> dict[str, Tensor]:
        """Per-data-point metrics [B] of a batch of images."""
        raise NotImplementedError

    # -- the one-pass fit -----------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted_on > 0)

    def refit(self) -> None:
        """Solve from the moments accumulated so far by every process (under DDP each rank
        holds a shard: the sums are all-reduced, so every rank calls this at the same points),
        unless nothing changed since the last fit."""
        sums = self.moments.summed_over_processes()
        count = sums.count
        if count == 0 or count == self.fitted_on:
            return
        if count < 2:
            raise VaelabError(
                "a closed-form fit needs at least two training images; use more "
                "data (data.val_size smaller) or trainer.limit_train_batches=null"
            )
        self.fit_moments(sums.mean(), sums.covariance())
        self.fitted_on.fill_(count)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.moments.update(batch[0].flatten(start_dim=1))
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self.refit()

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:
            self.refit()

    def on_train_epoch_end(self) -> None:
        self.refit()
        if not self.trainer.should_stop:
            rank_zero_info(
                f"{type(self).__name__}: closed-form fit on "
                f"{int(self.fitted_on)} training images; one pass suffices, "
                "training stops"
            )
        self.trainer.should_stop = True

    def on_test_epoch_start(self) -> None:
        if not self.is_fitted:
            raise VaelabError(
                f"{type(self).__name__} has not been fitted: train it first "
                "(vaelab-train fits it in one pass) or test a checkpoint written "
                "after the fit"
            )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        if self.is_fitted:  # the sanity check before the fit has nothing to evaluate
            self.epoch_means.log(self, "val", self.evaluation_values(batch[0]))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.epoch_means.log(self, "test", self.evaluation_values(batch[0]))

    def configure_optimizers(self) -> None:
        """No optimiser: the parameters come from :meth:`fit_moments`."""
        return None
