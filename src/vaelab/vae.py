"""The VAE as a plain nn.Module: encoder, decoder, posterior family, likelihood, prior."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.likelihoods.base import EVENT_DIMS, Likelihood
from vaelab.posteriors.base import Posterior


class VAE(nn.Module):
    """p_θ(x, z) = p(z) p_θ(x|z) with amortised q_φ(z|x) (Kingma & Welling 2014).

    ``encoder`` maps images [B, C, H, W] to the posterior's parameter vector [B, P];
    ``decoder`` maps codes [N, D] to likelihood parameters [N, k·C, H, W].
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        posterior: Posterior,
        likelihood: Likelihood,
        latent_dim: int,
        input_shape: Sequence[int],
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.posterior = posterior
        self.likelihood = likelihood
        self.latent_dim = int(latent_dim)
        self.input_shape = tuple(int(s) for s in input_shape)

    def encode(self, x: Tensor) -> Distribution:
        """q_φ(z|x), batch shape [B], event shape [D]."""
        return self.posterior.distribution(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        """Likelihood parameters for codes of shape [..., D] → [..., k·C, H, W]."""
        leading = z.shape[:-1]
        out = self.decoder(z.reshape(-1, self.latent_dim))
        return out.reshape(*leading, *out.shape[-EVENT_DIMS:])

    def prior(self) -> Distribution:
        """p(z) = N(0, I) in the posterior's own family, so KL has a closed form."""
        reference = next(self.parameters())
        return self.posterior.standard_prior(self.latent_dim, reference.device)

    def sample_images(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Decoder means E[x|z] for z ~ p(z): [num, C, H, W]."""
        device = next(self.parameters()).device
        z = torch.randn(num, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoder mean at the posterior mean code: E[x | z = E_q z]."""
        return self.likelihood.mean(self.decode(self.posterior.mean(self.encoder(x))))
