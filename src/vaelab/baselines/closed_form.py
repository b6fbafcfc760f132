"""Latent-variable models fitted in closed form from the training split's first two moments:
one pass over the data, no optimiser, no gradient steps (PCA, probabilistic PCA)."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from typing_extensions import override

from vaelab.baselines.moments import DataMoments
from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel, input_shape_of
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import Weighting
from vaelab.schema import ImageShape, PositiveInt, checked_arguments


@checked_arguments("model")
class ClosedFormModel(LatentVariableModel):
    """A model that :class:`~vaelab.module.LatentVariableModule` fits in one pass: every
    training batch (after the datamodule's scaling and binarization) goes to
    :meth:`accumulate`, and :meth:`finish_fit` solves for the parameters from the moments.
    Training then stops, whatever ``trainer.max_epochs`` says. It takes no optimiser, no
    objective and no β: ``config_groups`` is empty, so choosing one is refused.

    Subclasses implement :meth:`fit_moments` and :meth:`default_objective`.
    """

    config_groups: ClassVar[frozenset[str]] = frozenset()
    trains_by_gradient: ClassVar[bool] = False

    def __init__(self, latent_dim: PositiveInt, input_shape: ImageShape) -> None:
        super().__init__()
        self.input_shape = input_shape_of(input_shape)
        self.latent_dim = int(latent_dim)
        data_dim = math.prod(self.input_shape)
        if not 1 <= self.latent_dim < data_dim:
            raise VaelabError(
                f"model.latent_dim must lie in 1..{data_dim - 1} (fewer components than the "
                f"{data_dim} pixels), got {latent_dim}"
            )
        self.moments = DataMoments(data_dim)
        # how many data points the stored parameters were fitted on (0: not fitted yet)
        self.register_buffer("fitted_on", torch.zeros((), dtype=torch.float64))

    @abstractmethod
    def fit_moments(self, mean: Tensor, covariance: Tensor) -> None:
        """Set the parameters from the data mean [D] and ML covariance [D, D] (float64)."""

    # -- the one-pass fit -----------------------------------------------------------------
    def accumulate(self, x: Tensor, _y: Tensor | None = None) -> None:
        """Add a training batch of images [B, C, H, W] to the running moments."""
        self.moments.update(x.flatten(start_dim=1))

    def finish_fit(self) -> None:
        """Solve from the moments accumulated so far by every process (under DDP each rank
        holds a shard: the sums are all-reduced, so every rank calls this at the same points),
        unless nothing changed since the last fit (so the second call, at the end of the epoch,
        costs one all-reduce and no solve)."""
        sums = self.moments.summed_over_processes()
        count = sums.count
        if count == 0 or count == self.fitted_on:
            return
        if count < 2:
            raise VaelabError(
                "a closed-form fit needs at least two training images; use more data "
                "(data.val_size smaller) or trainer.limit_train_batches=null"
            )
        self.fit_moments(sums.mean(), sums.covariance())
        self.fitted_on.fill_(count)
        rank_zero_info(
            f"{type(self).__name__}: closed-form fit on {int(count)} training images; one "
            "pass suffices, training stops"
        )

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted_on > 0)

    def check_fitted(self) -> None:
        """Raise the user's error for evaluating a model that was never fitted."""
        if not self.is_fitted:
            raise VaelabError(
                f"{type(self).__name__} has not been fitted: train it first (vaelab-train "
                "fits it in one pass) or test a checkpoint written after the fit"
            )


class ClosedFormEvaluation(Objective):
    """The default objective of a :class:`ClosedFormModel`: it is never minimised (the model
    is fitted in closed form), only evaluated on validation and test batches, and refuses a
    model that was never fitted. Subclasses implement :meth:`evaluate`."""

    def evaluate(self, model: ClosedFormModel, x: Tensor, y: Tensor | None) -> ObjectiveOutput:
        raise NotImplementedError

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
        split: str = "train",
    ) -> ObjectiveOutput:
        if not isinstance(model, ClosedFormModel):
            raise VaelabError(
                f"{type(self).__name__} evaluates closed-form models, not {type(model).__name__}"
            )
        model.check_fitted()
        return self.evaluate(model, x, y)
