"""Interface of a variational posterior family q_φ(z|x)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal


class Posterior(nn.Module):
    """Turns the encoder's flat output vector into a distribution over z ∈ R^D."""

    #: True when q factorises over latent dimensions, so KL can be reported per dimension
    factorizes: bool = True

    def num_params(self, latent_dim: int) -> int:
        """How many numbers the encoder must output per data point."""
        raise NotImplementedError

    def distribution(self, encoder_output: Tensor) -> Distribution:
        """q(z|x) with batch shape [B] and event shape [D]."""
        raise NotImplementedError

    def standard_prior(self, latent_dim: int, device: torch.device) -> Distribution:
        """N(0, I) as a distribution of this family, so that KL(q || p) is analytic."""
        zeros = torch.zeros(latent_dim, device=device)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def cached_prior(self, latent_dim: int, device: torch.device | str) -> Distribution:
        """:meth:`standard_prior`, built once per (latent_dim, device): its tensors are
        constants, and rebuilding it is ~25 µs of Python in every training step."""
        cache = self.__dict__.setdefault("_prior_cache", {})
        key = (int(latent_dim), torch.device(device))
        if key not in cache:
            cache[key] = self.standard_prior(*key)
        return cache[key]

    def mean(self, encoder_output: Tensor) -> Tensor:
        """E_q[z], the code used for plots and active-unit counts."""
        return self.distribution(encoder_output).mean
