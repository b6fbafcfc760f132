"""The common base of the flow posteriors: a diagonal Gaussian from the encoder pushed
through a flow of :mod:`vaelab.flows` (Rezende & Mohamed 2015, eq. 7)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent, Normal, Transform

from vaelab.errors import VaelabError
from vaelab.flows.distribution import FlowDistribution
from vaelab.posteriors.base import Posterior
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("model.posterior")
class FlowPosterior(Posterior):
    """q(z|x): a diagonal Gaussian q₀ = N(μ, diag σ²) from the encoder (σ = exp(s/2), s the
    encoder's log σ²) pushed through a flow whose transforms may read more encoder outputs
    (amortised flow parameters, a context vector). q does not factorise and KL(q || p) has no
    closed form: ``objective.kl=auto`` takes the Monte-Carlo KL.

    The encoder's outputs per data point are laid out as [μ (D), log σ² (D), flow inputs
    (:meth:`num_flow_inputs`)]. The flow's own networks need D, which a posterior first learns
    from :meth:`num_params` (the first thing every model asks of it): they are created there,
    once; asking again for another D is an error.
    """

    def __init__(self, num_flows: PositiveInt) -> None:
        super().__init__()
        self.num_flows = int(num_flows)
        self.latent_dim: int | None = None

    def num_flow_inputs(self, latent_dim: int) -> int:
        """Encoder outputs the flow reads per data point (0: nothing amortised)."""
        raise NotImplementedError

    def build(self, latent_dim: int) -> None:
        """Create the flow's parameters for a latent of size ``latent_dim``."""

    def transforms(self, flow_inputs: Tensor) -> list[Transform]:
        """The flow f_1, …, f_K for encoder outputs ``flow_inputs`` [B, num_flow_inputs]."""
        raise NotImplementedError

    def num_params(self, latent_dim: int) -> int:
        latent_dim = int(latent_dim)
        if self.latent_dim is None:
            self.latent_dim = latent_dim
            self.build(latent_dim)
        elif latent_dim != self.latent_dim:
            raise VaelabError(
                f"this {type(self).__name__} was built for latent_dim={self.latent_dim} and "
                f"cannot serve latent_dim={latent_dim}: give each latent its own posterior"
            )
        return 2 * latent_dim + self.num_flow_inputs(latent_dim)

    def distribution(self, encoder_output: Tensor) -> FlowDistribution:
        if self.latent_dim is None:
            raise VaelabError(f"{type(self).__name__}.num_params(latent_dim) was never called")
        dim = self.latent_dim
        encoder_output = encoder_output.float()
        mu, log_var = encoder_output[..., :dim], encoder_output[..., dim : 2 * dim]
        base = Independent(
            Normal(mu, torch.exp(0.5 * log_var), validate_args=False), 1, validate_args=False
        )
        return FlowDistribution(base, self.transforms(encoder_output[..., 2 * dim :]))

    def mean(self, encoder_output: Tensor) -> Tensor:
        """f(μ₀), the flow applied to the base mean (see :class:`FlowDistribution`)."""
        return self.distribution(encoder_output).mean
