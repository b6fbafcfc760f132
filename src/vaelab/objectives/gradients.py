"""Gradient estimators of the importance-weighted bounds (``objective.gradient=``); the bounds
themselves share :class:`~vaelab.objectives.importance_weighted.ImportanceWeightedObjective`.

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
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentSamples, LatentVariableModel, MissingCapability

GradientEstimator = Literal["reparam", "stl", "dreg"]
#: cap of the path rescaling c_j/a_j: a sample whose generative weight a_j has underflowed in
#: float32 has no gradient left to rescale, and inf·0 must not turn into NaN
MAX_PATH_FACTOR = 1e30


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
    stopped_weights = samples.with_log_posterior(log_posterior_stopped).log_weights
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
            y = model.labels_for_samples(2, torch.Generator(model.device).manual_seed(0))
            samples = model.sample_latents(x, y, 2)
            stopped = model.log_posterior_stopped(samples.with_z(samples.z.detach()), x, y)
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
