"""The base of the importance-weighted bounds (IWAE, MIWAE, CIWAE, PIWAE): a bound on
log p(x) from the log weights of the model's samples, trained with the gradient estimator
of :mod:`vaelab.objectives.gradients`."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.gradients import (
    GradientCoefficients,
    GradientEstimator,
    check_stopped_posterior,
    surrogate_bound,
)
from vaelab.schedules.base import Weighting
from vaelab.schema import checked_arguments


@checked_arguments("objective")
class ImportanceWeightedObjective(Objective):
    """A bound on log p(x) computed from log weights of ``total_samples`` draws of the model's
    one estimator (:meth:`~vaelab.models.interface.LatentVariableModel.sample_latents`), with
    the gradient estimator ``gradient`` (module doc). Logs its bound as ``bound_name``; the
    ``elbo`` term is the Monte-Carlo ELBO (1/n) Σ log w_j of the same draws, ``recon`` and
    ``kl`` its parts. β weighting does not apply: anything but constant β = 1 is refused.

    Subclasses define :meth:`bound`, :meth:`bound_weights` (∂bound/∂log w_j) and
    :meth:`dreg_weights`; one whose encoder and decoder follow different bounds (PIWAE)
    overrides :meth:`generative_weights`.
    """

    term_names: ClassVar[tuple[str, ...]] = ("elbo", "recon", "kl")
    #: the option name in messages (``objective=<config_name>``)
    config_name: ClassVar[str] = ""
    #: True when the decoder follows another bound than the encoder (PIWAE)
    separate_generative_bound: ClassVar[bool] = False

    def __init__(self, gradient: GradientEstimator = "reparam") -> None:
        super().__init__()
        self.gradient = gradient

    @property
    def total_samples(self) -> int:
        raise NotImplementedError

    def bound(self, log_weights: Tensor) -> Tensor:
        """[B] the bound from log weights [n, B]."""
        raise NotImplementedError

    def bound_weights(self, log_weights: Tensor) -> Tensor:
        """[n, B] ∂bound/∂log w_j: the coefficients of the reparameterisation gradient."""
        raise NotImplementedError

    def dreg_weights(self, log_weights: Tensor) -> Tensor:
        """[n, B] the path coefficients of the doubly reparameterised gradient."""
        raise NotImplementedError

    def generative_weights(self, log_weights: Tensor) -> Tensor:
        """[n, B] the coefficients of the decoder's (and prior's) gradient."""
        return self.bound_weights(log_weights)

    def extra_terms(self, log_weights: Tensor) -> dict[str, Tensor]:  # noqa: ARG002
        """Further bounds to log beside the ELBO (PIWAE's MIWAE bound)."""
        return {}

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        if not weighting.is_identity:
            raise VaelabError(
                f"objective={self.config_name} optimises an importance-weighted bound, which "
                "has no KL term to weight; use beta=constant beta.value=1.0 (or objective=elbo "
                "for β-VAEs and KL schedules)"
            )
        if self.gradient != "reparam" or self.separate_generative_bound:
            check_stopped_posterior(model, f"objective={self.config_name} with {self.gradient}")

    def resolved_choices(self) -> dict[str, Any]:
        return {"gradient": self.gradient}

    @override
    def for_reconstruction_loss(self, model: LatentVariableModel) -> None:
        raise VaelabError(
            f"objective={self.config_name} is an importance-weighted bound on log p(x), but "
            f"{type(model).__name__}'s likelihood is a reconstruction loss, not a normalised "
            "p(x|z): use objective=elbo (its loss is recon + β·KL) or a normalised likelihood="
        )

    def coefficients(self, log_weights: Tensor) -> GradientCoefficients:
        """The three paths' coefficients of this bound under this estimator (detached)."""
        log_weights = log_weights.detach()
        inference = self.bound_weights(log_weights)
        generative = self.generative_weights(log_weights)
        if self.gradient == "reparam":
            return GradientCoefficients(generative, path=inference, score=inference)
        if self.gradient == "stl":
            return GradientCoefficients(generative, path=inference, score=None)
        return GradientCoefficients(generative, path=self.dreg_weights(log_weights), score=None)

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
        samples = model.sample_latents(x, y, self.total_samples)  # [n, B] log-densities
        log_weights = samples.log_weights
        bound = self.bound(log_weights)
        terms = {
            "elbo": log_weights.mean(0),
            "recon": -samples.log_likelihood.mean(0),
            "kl": (samples.log_posterior - samples.log_prior).mean(0),
            **self.extra_terms(log_weights),
        }
        if self.gradient == "reparam" and not self.separate_generative_bound:
            objective = bound  # autograd of the bound is the reparameterisation gradient
        elif not torch.is_grad_enabled():
            objective = bound  # evaluation: the value is all that counts
        else:
            objective = surrogate_bound(
                samples,
                model.log_posterior_stopped(samples, x, y),
                bound,
                self.coefficients(log_weights),
                rescale_path=self.gradient == "dreg" or self.separate_generative_bound,
            )
        return ObjectiveOutput(loss=-objective, bound=bound, terms=terms)
