"""What every flow transform shares: the event they act on and their networks' dtype.

A flow pushes a base density q₀ through f = f_K ∘ … ∘ f_1; the density of z_K = f(z₀) is
log q_K(z_K) = log q₀(z₀) − Σ_k log |det ∂f_k/∂z_{k−1}| (Rezende & Mohamed 2015, eq. 7).
``torch.distributions.TransformedDistribution`` does this sum; each transform of this package
supplies its forward map, its inverse and its log-determinant, and caches its last (x, y)
pair (``cache_size=1``), so the log-density of a sample just drawn needs no inversion.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.distributions import constraints

#: a transform acts on whole latent vectors z ∈ R^D (event dimension 1)
LATENT_VECTORS = constraints.independent(constraints.real, 1)


def as_dtype_of(network: nn.Module, x: Tensor) -> Tensor:
    """``x`` in the network's weight dtype (bf16-true runs keep the flow in float32 outside)."""
    weight = next(network.parameters())
    return x if x.dtype == weight.dtype else x.to(weight.dtype)
