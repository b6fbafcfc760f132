"""Interface of a variational posterior family q_φ(z|x)."""

from __future__ import annotations

from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.posteriors.geometry import EUCLIDEAN, LatentGeometry


class Posterior(nn.Module):
    """Turns the encoder's flat output vector into a distribution over z ∈ R^D."""

    #: the space z lives in (a VAE refuses a prior of another; see posteriors/geometry.py)
    geometry: LatentGeometry = EUCLIDEAN

    def num_params(self, latent_dim: int) -> int:
        """How many numbers the encoder must output per data point."""
        raise NotImplementedError

    def distribution(self, encoder_output: Tensor) -> Distribution:
        """q(z|x) with batch shape [B] and event shape [D]."""
        raise NotImplementedError

    def mean(self, encoder_output: Tensor) -> Tensor:
        """E_q[z], the code used for plots and active-unit counts."""
        return self.distribution(encoder_output).mean
