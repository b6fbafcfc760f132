"""Gradient estimators of the importance-weighted bounds (``objective.gradient=``) and the base
class those bounds share.

Every bound here is a function of the k log weights log w_j = log p(x, z_j) − log q_φ(z_j|x),
z_j = z(ε_j, φ). Its gradient has three paths:

- **generative**: θ (decoder, prior) through log p_θ(x, z_j) at fixed z;
- **path**: φ through z_j (∂ log w_j/∂z_j · ∂z_j/∂φ);
- **score**: φ through q's parameters at fixed z (−∂ log q_φ(z_j|x)/∂φ), zero in expectation.

With per-sample coefficients a_j (generative), c_j (path) and s_j (score), the surrogate

    S = Σ_j a_j v_j − Σ_j s_j (log q_φ(z_j) − log q_⊥(z_j)),   v_j = log p(x, z_j) − log q_⊥(z_j),

with q_⊥ the posterior with stopped parameters and the gradient arriving at z_j rescaled by
c_j/a_j (a tensor hook: one forward, one backward), has exactly these three gradients. Its value
is replaced by the bound's (value of one, gradient of the other), so the logged loss stays −bound.

- ``reparam`` (Kingma & Welling 2014; Burda et al. 2015, eq. 14): c = s = a = ∂bound/∂log w.
- ``stl``, sticking the landing (Roeder, Wu & Duvenaud 2017, "Sticking the landing: simple,
  lower-variance gradient estimators for variational inference", the path-derivative
  estimator, applied there to the ELBO and the IWAE bound): the score term dropped, s = 0,
  c = a. Unbiased for the ELBO; biased for importance-weighted bounds with k > 1 (Tucker et al.
  2018).
- ``dreg``, doubly reparameterised (Tucker, Lawson, Gu & Maddison 2018, "Doubly reparameterized
  gradient estimators for Monte Carlo objectives", the IWAE-DReG estimator): for a log-mean-exp
  term over k samples, the encoder gets Σ_j w̃_j² ∂ log w_j/∂z_j ∂z_j/∂φ with normalised
  weights w̃; s = 0. Unbiased; for k = 1 it is STL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentSamples, LatentVariableModel, MissingCapability
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import Weighting

GradientEstimator = Literal["reparam", "stl", "dreg"]
GRADIENT_ESTIMATORS = ("reparam", "stl", "dreg")
#: cap of the path rescaling c_j/a_j: a sample whose generative weight a_j has underflowed in
#: float32 has no gradient left to rescale, and inf·0 must not turn into NaN
MAX_PATH_FACTOR = 1e30


def check_gradient_estimator(gradient: str) -> str:
    if gradient not in GRADIENT_ESTIMATORS:
        raise VaelabError(
            f"objective.gradient must be one of {', '.join(GRADIENT_ESTIMATORS)}, got {gradient!r}"
        )
    return gradient


def log_mean_exp(log_values: Tensor, dim: int = 0) -> Tensor:
    return torch.logsumexp(log_values, dim=dim) - math.log(log_values.shape[dim])


@dataclass
class GradientCoefficients:
    """Per-sample coefficients [k, B] (detached) of the three gradient paths (module doc)."""

    generative: Tensor
    path: Tensor
    #: None: the score term is dropped (stl, dreg)
    score: Tensor | None


def surrogate_bound(
    samples: LatentSamples,
    log_posterior_stopped: Tensor,
    bound: Tensor,
    coefficients: GradientCoefficients,
    rescale_path: bool,
) -> Tensor:
    """[B] with the value of ``bound`` and the gradient given by ``coefficients``.

    ``log_posterior_stopped`` is log q(z_j|x) with q's parameters detached;
    ``rescale_path``: the path coefficients differ from the generative ones, so the gradient
    arriving at z is rescaled by their ratio."""
    stopped_weights = samples.log_likelihood + samples.log_prior - log_posterior_stopped
    surrogate = (coefficients.generative * stopped_weights).sum(0)
    if coefficients.score is not None:
        score_only = samples.log_posterior - log_posterior_stopped  # value 0, ∂/∂z 0
        surrogate = surrogate - (coefficients.score * score_only).sum(0)
    generative = coefficients.generative
    if rescale_path and samples.z.requires_grad:
        factor = torch.where(
            generative > 0,
            coefficients.path / generative.clamp_min(torch.finfo(generative.dtype).tiny),
            torch.zeros_like(generative),
        ).clamp_max(MAX_PATH_FACTOR)
        factor = factor.reshape(*factor.shape, *([1] * (samples.z.dim() - factor.dim())))
        samples.z.register_hook(lambda grad: grad * factor.to(grad.dtype))
    return bound.detach() + (surrogate - surrogate.detach())


def check_stopped_posterior(model: LatentVariableModel, estimator: str) -> None:
    """Refuse ``estimator`` (stl, dreg, PIWAE's split gradient) for a model whose q cannot be
    scored with stopped parameters: probe two blank inputs and check that the stopped log q
    has no gradient (in eval mode: batch-norm statistics do not see the probe)."""
    x = torch.zeros(2, *model.input_shape, device=model.device)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            samples = model.sample_latents(x, None, 2)
            stopped = model.log_posterior_stopped(replace(samples, z=samples.z.detach()), x)
    except MissingCapability as err:
        raise VaelabError(f"{estimator}: {err}") from err
    finally:
        model.train(was_training)
    if stopped.requires_grad:
        raise VaelabError(
            f"{estimator} needs log q(z|x) with stopped parameters, but "
            f"{type(samples.posterior).__name__} keeps parameters outside its tensors (a "
            "transform's module, say), so they cannot be stopped; use objective.gradient=reparam "
            "(and another objective than piwae)"
        )


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
        self.gradient = check_gradient_estimator(gradient)

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
