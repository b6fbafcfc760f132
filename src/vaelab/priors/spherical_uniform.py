"""The uniform prior on the unit sphere S^(D−1) (Davidson et al. 2018, §3.1), and the closed-form
KL of a von Mises–Fisher posterior to it (the paper's eq. 5-6)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints, register_kl

from vaelab.posteriors.geometry import SPHERE
from vaelab.posteriors.von_mises_fisher import VonMisesFisher, log_sphere_area
from vaelab.priors.base import Encoder, Prior


class HypersphericalUniform(Distribution):
    """U(S^(D−1)): density 1/|S^(D−1)| with respect to the surface measure; samples are
    normalised standard normal vectors."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector

    def __init__(self, dim: int, device: torch.device | None = None, dtype=torch.float32):
        self.dim = int(dim)
        self._device, self._dtype = device, dtype
        super().__init__(torch.Size(), torch.Size([self.dim]), validate_args=False)

    @property
    def mean(self) -> Tensor:
        return torch.zeros(self.dim, device=self._device, dtype=self._dtype)

    @property
    def variance(self) -> Tensor:
        return torch.full((self.dim,), 1 / self.dim, device=self._device, dtype=self._dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        return torch.full(
            value.shape[:-1], -log_sphere_area(self.dim), dtype=value.dtype, device=value.device
        )

    def entropy(self) -> Tensor:
        return torch.tensor(log_sphere_area(self.dim), device=self._device, dtype=self._dtype)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        return F.normalize(torch.randn(shape, device=self._device, dtype=self._dtype), dim=-1)


class SphericalUniformPrior(Prior):
    """p(z) = U(S^(D−1)), the S-VAE's prior: nothing is learned; the KL of a vMF posterior to
    it is analytic (registered below), so ``objective.kl=auto`` takes the closed form."""

    geometry = SPHERE

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        if self.latent_dim < 2:
            raise ValueError(
                f"prior=spherical_uniform needs latent_dim ≥ 2 (S^(D−1) ⊂ R^D), got "
                f"{self.latent_dim}"
            )
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def distribution(self) -> Distribution:
        return HypersphericalUniform(self.latent_dim, self._anchor.device)


@register_kl(VonMisesFisher, HypersphericalUniform)
def _kl_vmf_uniform(q: VonMisesFisher, p: HypersphericalUniform) -> Tensor:
    """KL(vMF(μ, κ) ‖ U(S^(D−1))) = κ A_D(κ) + log C_D(κ) + log |S^(D−1)| (−H(q) − log p)."""
    if q.dim != p.dim:
        raise ValueError(f"KL between spheres of different sizes ({q.dim} and {p.dim})")
    return -q.entropy() + log_sphere_area(q.dim)


__all__ = ["HypersphericalUniform", "SphericalUniformPrior"]
