"""vaelab.evaluation.iw_nll: the importance-weighted log-likelihood estimator against an exact
log p(x).

A linear-Gaussian model (probabilistic PCA: z ~ N(0, I), x | z ~ N(Wz + μ, σ²I)) has the exact
marginal log p(x) = log N(x; μ, WWᵀ + σ²I). The VAE below is that model with a deliberately
imperfect diagonal encoder, so the bound has a real gap KL(q(z|x) || p(z|x)) for IW to close.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Distribution, MultivariateNormal, Normal

from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.likelihoods.base import Likelihood
from vaelab.models.vae import VAE
from vaelab.nets.networks import EncoderDecoder
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior

IMAGE_SHAPE = (1, 3, 4)
DATA_DIMS = math.prod(IMAGE_SHAPE)
LATENT_DIM = 2
NOISE_STD = 0.5


class FixedGaussian(Likelihood):
    """x_i ~ N(decoder mean_i, σ²) with a fixed σ (the PPCA noise model)."""

    is_continuous = True

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        return Normal(decoder_output, self.std)


class LinearDecoder(nn.Module):
    """z → Wz + μ reshaped to the image."""

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, z: Tensor) -> Tensor:
        return (z @ self.weight.T + self.bias).reshape(-1, *IMAGE_SHAPE)


class LinearEncoder(nn.Module):
    """x → (A(x − μ), log σ²_q): the exact posterior mean map, scaled, with a fixed variance."""

    def __init__(self, projection: Tensor, bias: Tensor, log_var: Tensor) -> None:
        super().__init__()
        self.projection, self.bias, self.log_var = projection, bias, log_var

    def forward(self, x: Tensor) -> Tensor:
        mean = (x.flatten(1) - self.bias) @ self.projection.T
        return torch.cat([mean, self.log_var.expand_as(mean)], dim=-1)


def linear_gaussian_vae(seed: int = 0) -> tuple[VAE, MultivariateNormal]:
    """The PPCA model as a VAE, and its exact marginal p(x)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(DATA_DIMS, LATENT_DIM, generator=generator)
    bias = torch.randn(DATA_DIMS, generator=generator)
    # exact posterior: N(M⁻¹Wᵀ(x − μ), σ² M⁻¹), M = WᵀW + σ²I (Tipping & Bishop 1999)
    m = weight.T @ weight + NOISE_STD**2 * torch.eye(LATENT_DIM)
    posterior_cov = NOISE_STD**2 * torch.linalg.inv(m)
    projection = 0.9 * torch.linalg.solve(m, weight.T)  # a 10% shrunk posterior mean
    log_var = torch.log(2.0 * torch.diagonal(posterior_cov))  # too wide, and no correlation
    networks = EncoderDecoder(LinearEncoder(projection, bias, log_var), LinearDecoder(weight, bias))
    vae = VAE(
        lambda **sizes: networks,
        LATENT_DIM,
        IMAGE_SHAPE,
        posterior=DiagonalGaussianPosterior(),
        likelihood=FixedGaussian(NOISE_STD),
    )
    marginal = MultivariateNormal(bias, weight @ weight.T + NOISE_STD**2 * torch.eye(DATA_DIMS))
    return vae, marginal


def sample_data(marginal: MultivariateNormal, num: int, seed: int = 1) -> Tensor:
    torch.manual_seed(seed)
    return marginal.sample((num,)).reshape(num, *IMAGE_SHAPE)


def test_k5000_matches_the_exact_log_likelihood_within_half_a_nat():
    vae, marginal = linear_gaussian_vae()
    x = sample_data(marginal, 16)
    exact = marginal.log_prob(x.flatten(1)).double()
    torch.manual_seed(2)
    estimate = importance_weighted_log_likelihood(vae, x, num_samples=5000, chunk_size=500)
    gap_k1 = exact - estimate.mean_log_weight
    assert gap_k1.mean() > 0.5, "the encoder must be imperfect for this test to mean anything"
    assert (estimate.log_likelihood - exact).abs().max() < 0.5
    # Jensen on the same samples: log mean w ≥ mean log w, for every point
    assert (estimate.log_likelihood >= estimate.mean_log_weight).all()


def test_small_k_is_lower_than_exact_on_average_and_rises_with_k():
    vae, marginal = linear_gaussian_vae()
    x = sample_data(marginal, 4).repeat(200, 1, 1, 1)  # 200 independent estimates per point
    exact = marginal.log_prob(x.flatten(1)).double()
    torch.manual_seed(3)
    means = {}
    for k in (1, 2, 5):
        error = importance_weighted_log_likelihood(vae, x, k, chunk_size=k).log_likelihood - exact
        stderr = error.std() / math.sqrt(len(error))
        assert error.mean() < -3 * stderr, f"k={k}: estimate not below exact on average"
        means[k] = float(error.mean())
    assert means[1] < means[2] < means[5] < 0.0


def test_exact_log_likelihood_is_the_gaussian_marginal_by_quadrature():
    """Sanity of the test model itself: log p(x) by a 2-D grid integral over z."""
    vae, marginal = linear_gaussian_vae()
    x = sample_data(marginal, 2)
    axis = torch.linspace(-8, 8, 401, dtype=torch.float64)
    z = torch.cartesian_prod(axis, axis)
    cell = float(axis[1] - axis[0]) ** 2
    with torch.no_grad():
        decoded = vae.decode(z.float())
    for image, target in zip(x, marginal.log_prob(x.flatten(1)), strict=True):
        log_joint = decoded.log_prob(image.expand(len(z), *IMAGE_SHAPE)).detach().double() + Normal(
            0.0, 1.0
        ).log_prob(z).sum(-1)
        quadrature = torch.logsumexp(log_joint, 0) + math.log(cell)
        assert float(quadrature) == pytest.approx(float(target), abs=1e-3)


def test_chunked_equals_unchunked():
    """Same random stream, different chunking: identical samples, so identical estimates.
    (CPU normal draws are generated in blocks of 16, so batch × latent_dim = 16 here.)"""
    vae, marginal = linear_gaussian_vae()
    x = sample_data(marginal, 8)
    assert x.shape[0] * LATENT_DIM % 16 == 0
    results = []
    for chunk in (100, 7, 1):
        torch.manual_seed(4)
        results.append(importance_weighted_log_likelihood(vae, x, 100, chunk_size=chunk))
    for other in results[1:]:
        torch.testing.assert_close(
            other.log_likelihood, results[0].log_likelihood, atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            other.mean_log_weight, results[0].mean_log_weight, atol=1e-4, rtol=0
        )


def test_float64_accumulation_survives_huge_log_weights():
    """log-weights of −1e4 nats would underflow a naive mean of exp(log w) even in float64."""
    vae, marginal = linear_gaussian_vae()
    x = sample_data(marginal, 8) + 60.0  # far from the data: log p(x) ≈ −1e4
    exact = marginal.log_prob(x.flatten(1)).double()
    assert exact.max() < -1000
    torch.manual_seed(5)
    estimate = importance_weighted_log_likelihood(vae, x, 200, chunk_size=64)
    assert torch.isfinite(estimate.log_likelihood).all()
    assert (estimate.log_likelihood <= exact + 0.5).all()


@pytest.mark.parametrize(("num_samples", "chunk_size"), [(0, 10), (10, 0)])
def test_bad_counts_are_refused(num_samples, chunk_size):
    vae, marginal = linear_gaussian_vae()
    with pytest.raises(ValueError, match=r"eval\.num_samples|eval\.chunk_size"):
        importance_weighted_log_likelihood(vae, sample_data(marginal, 2), num_samples, chunk_size)
