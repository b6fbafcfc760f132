"""What a latent distribution (a posterior q(z|x) or a prior p(z)) offers in closed form,
declared per distribution type in ``register_kl`` style (``functools.singledispatch``, through
:func:`distribution_dispatch`, which ``torch.compile`` can trace).

The objectives ask these questions instead of testing distribution classes: a new family
registers its answers here (or next to its own distribution) and every objective that needs
them applies to it; one that cannot answer is refused by the objective, naming what is missing.

- :func:`factorised_marginals`: p(z) = ∏_d p(z_d)? Then the per-dimension factors (batch
  [..., D]), so a KL splits into per-dimension terms. None otherwise.
- :func:`dimension_marginals`: the marginals p(z_d) in closed form, factorised or not (a
  full-covariance Gaussian has them). None when unknown (a flow).
- :func:`gaussian_moments`: mean and covariance [..., D, D] of a Gaussian. None otherwise.
- :func:`latent_blocks`: named independent blocks (continuous, discrete) of a product code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatch, wraps

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal


def distribution_dispatch(function: Callable) -> Callable:
    """``functools.singledispatch`` on the distribution's class, callable inside
    ``torch.compile``: the implementation is found by walking the class's MRO through a plain
    dict of the registrations (functools' first lookup of a class, and its registry's
    mappingproxy, are not traceable by dynamo: under ``module.compile=true`` the ELBO engine's
    first call of :func:`rejection_score` crashed). ``register`` is singledispatch's."""
    dispatcher = singledispatch(function)
    implementations: dict[type, Callable] = dict(dispatcher.registry)

    @wraps(function)
    def dispatch(distribution: Distribution, *args, **kwargs):
        for cls in type(distribution).__mro__:
            if cls in implementations:
                return implementations[cls](distribution, *args, **kwargs)
        return function(distribution, *args, **kwargs)

    def register(cls, func=None):
        registered = dispatcher.register(cls, func)
        if func is None and isinstance(cls, type):  # register(cls) returns the decorator

            def decorate(implementation: Callable) -> Callable:
                out = registered(implementation)
                implementations.update(dispatcher.registry)
                return out

            return decorate
        implementations.update(dispatcher.registry)
        return registered

    dispatch.register = register
    return dispatch


@distribution_dispatch
def factorised_marginals(distribution: Distribution) -> Distribution | None:  # noqa: ARG001
    """The factors p(z_d) of a distribution that is their product over the last axis."""
    return None


@factorised_marginals.register
def _(distribution: Independent) -> Distribution | None:
    return distribution.base_dist if distribution.reinterpreted_batch_ndims == 1 else None


@distribution_dispatch
def dimension_marginals(distribution: Distribution) -> Distribution | None:
    """The marginals p(z_d) for each dimension (batch [..., D]) in closed form, or None."""
    return factorised_marginals(distribution)


@dimension_marginals.register
def _(distribution: MultivariateNormal) -> Distribution:
    scale = distribution.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    return Normal(distribution.loc, scale)


@dataclass
class GaussianMoments:
    """Mean [..., D] and covariance [..., D, D] of a Gaussian."""

    mean: Tensor
    covariance: Tensor


@distribution_dispatch
def gaussian_moments(distribution: Distribution) -> GaussianMoments | None:  # noqa: ARG001
    """Mean and covariance of a Gaussian distribution over z, or None for another family."""
    return None


@gaussian_moments.register
def _(distribution: MultivariateNormal) -> GaussianMoments:
    return GaussianMoments(distribution.loc, distribution.covariance_matrix)


@gaussian_moments.register
def _(distribution: Independent) -> GaussianMoments | None:
    base = distribution.base_dist
    if distribution.reinterpreted_batch_ndims != 1 or not isinstance(base, Normal):
        return None
    return GaussianMoments(base.loc, torch.diag_embed(base.variance))


def is_standard_normal(distribution: Distribution) -> bool:
    """N(0, I): a Gaussian with zero mean and identity covariance."""
    moments = gaussian_moments(distribution)
    if moments is None:
        return False
    covariance = moments.covariance
    identity = torch.eye(covariance.shape[-1], dtype=covariance.dtype, device=covariance.device)
    return bool((moments.mean == 0).all() and torch.allclose(covariance, identity))


@distribution_dispatch
def vector_quantised(distribution: Distribution) -> Distribution | None:  # noqa: ARG001
    """The distribution itself if it is a vector-quantised q(z|x) with a codebook (commitment
    term, code counts, EMA step: :mod:`vaelab.posteriors.codebook` registers it), else None."""
    return None


@distribution_dispatch
def latent_blocks(distribution: Distribution) -> dict[str, Distribution] | None:  # noqa: ARG001
    """The independent blocks of a product distribution by name (a JointVAE code's
    ``continuous`` Gaussian and ``discrete`` categorical parts), each over its own numbers, so
    a KL splits into one per block; None for a distribution that is not declared a product."""

    return None


@distribution_dispatch
def rejection_score(distribution: Distribution, z: Tensor) -> Tensor | None:  # noqa: ARG001
    """For a distribution whose ``rsample`` is a reparameterised rejection sampler (Naesseth et
    al. 2017, "Reparameterization Gradients through Acceptance-Rejection Sampling Algorithms"):
    log π(ε | θ) of the accepted noise ε behind each sample ``z`` ([sample, batch]), up to terms
    free of θ, differentiable in the parameters θ with ε held fixed. The ELBO engine adds the
    correction term g_cor = E[f ∇_θ log π(ε | θ)] with it, so that the gradient is g_rep + g_cor
    (unbiased). None for an exact reparameterisation (every other distribution)."""
    return None
