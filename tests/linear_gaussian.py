"""The linear-Gaussian model whose every quantity has a closed form, and a small MLP VAE:
shared by the tests of the ELBO, IWAE and its variants and the gradient estimators.

Model: p(z) = N(0, 1), p(x|z) = N(x; a·z + b, 1) as a 1×1×1 image; q(z|x) = N(μ, σ²) with
learnable (μ, log σ²) that ignore x. Then, for a = 1, b = 0: log p(x) = log N(x; 0, 2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaelab.likelihoods import BernoulliLikelihood, GaussianLikelihood
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.nets.networks import EncoderDecoder
from vaelab.objectives import Objective, ObjectiveOutput
from vaelab.posteriors import DiagonalGaussianPosterior
from vaelab.schedules import ConstantBeta
from vaelab.schedules.base import Weighting

X = 1.5
NUM_COPIES = 40_000  # independent estimates, one per copy of x


class FixedGaussianEncoder(nn.Module):
    """q(z|x) = N(μ, σ²) for every x, with learnable (μ, log σ²)."""

    def __init__(self, mu: float, log_var: float) -> None:
        super().__init__()
        self.params = nn.Parameter(torch.tensor([mu, log_var]))

    def forward(self, x: Tensor) -> Tensor:
        return self.params.expand(x.shape[0], 2)


class AffineDecoder(nn.Module):
    """z ↦ a·z + b as a 1×1×1 image; records the codes it was called with."""

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))
        self.inputs: list[Tensor] = []

    def forward(self, z: Tensor) -> Tensor:
        self.inputs.append(z.detach())
        return (self.a * z + self.b).reshape(-1, 1, 1, 1)


def given_networks(encoder: nn.Module, decoder: nn.Module):
    """A ``model.net`` builder that hands back networks built by the test."""

    def build(**sizes) -> EncoderDecoder:
        return EncoderDecoder(encoder, decoder)

    return build


def linear_gaussian_vae(
    mu: float = 0.3, log_var: float = -0.5, a: float = 1.0, b: float = 0.0
) -> VAE:
    vae = VAE(
        given_networks(FixedGaussianEncoder(mu, log_var), AffineDecoder(a, b)),
        latent_dim=1,
        input_shape=(1, 1, 1),
        posterior=DiagonalGaussianPosterior("log_var"),
        likelihood=GaussianLikelihood("fixed", scale=1.0),
    )
    vae.decoder.inputs.clear()  # forget the shape check's call
    return vae


def run(
    objective: Objective, vae: VAE, x: Tensor, weighting: Weighting | None = None
) -> ObjectiveOutput:
    """Set the objective up for ``vae`` and evaluate it on ``x`` at step 0."""
    weighting = weighting or ConstantBeta(1.0)
    objective.setup(vae, weighting, {})
    return objective(vae, x, None, weighting, 0)


def copies(value: float = X, num: int = NUM_COPIES) -> Tensor:
    return torch.full((num, 1, 1, 1), value)


def log_evidence(x: float) -> float:
    """log N(x; 0, 2)."""
    return -0.25 * x**2 - 0.5 * math.log(4 * math.pi)


def small_mlp_vae(posterior=None) -> tuple[VAE, Tensor]:
    torch.manual_seed(3)
    shape, latent = (1, 4, 4), 3
    posterior = posterior or DiagonalGaussianPosterior()
    vae = VAE(
        lambda **sizes: mlp(hidden_dims=(8,), **sizes),
        latent,
        shape,
        posterior=posterior,
        likelihood=BernoulliLikelihood(),
    )
    x = torch.bernoulli(torch.full((6, *shape), 0.4))
    return vae, x
