"""β-TCVAE, FactorVAE and DIP-VAE against exact small cases and closed forms.

The model of most tests is a table: data point n is the 1×1×1 image holding n, and
q(z|x_n) = N(μ_n, diag σ_n²) is read from a table, so the aggregate posterior of the data
set is an exact Gaussian mixture (torch.distributions.MixtureSameFamily).
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    kl_divergence,
)
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.likelihoods import BernoulliLikelihood
from vaelab.models.interface import LatentVariableModel
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO
from vaelab.objectives.beta_tcvae import BetaTCVAE, decompose_kl, log_aggregate_density
from vaelab.objectives.dip_vae import DIPVAE, code_covariance, covariance_penalty
from vaelab.objectives.factor_vae import FactorVAE, permute_dims
from vaelab.objectives.info_vae import InfoVAE
from vaelab.objectives.wae_mmd import WAEMMD
from vaelab.posteriors import DiagonalGaussianPosterior, FullCovarianceGaussianPosterior
from vaelab.priors.mixture import MixturePrior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.priors.vamp import VampPrior
from vaelab.schedules import ConstantBeta, FreeBits

SHAPE = (1, 1, 1)


class TableModel(LatentVariableModel):
    """x = n (a 1×1×1 image); q(z|x_n) = N(means[n], diag scales[n]²);
    p(x|z) = N(x; Σ_d z_d, 1); p(z) given (N(0, I) by default)."""

    def __init__(self, means: Tensor, scales: Tensor, prior: nn.Module | None = None) -> None:
        super().__init__()
        self.input_shape, self.latent_dim = SHAPE, means.shape[-1]
        self.means = nn.Parameter(means.clone())
        self.log_scales = nn.Parameter(scales.log())
        self._prior = prior or StandardNormalPrior()
        self._prior.setup(self.latent_dim, SHAPE, self.encode)

    @property
    def prior(self) -> nn.Module:
        return self._prior

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        index = x.flatten().long()
        return Independent(Normal(self.means[index], self.log_scales[index].exp()), 1)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(z.sum(-1).reshape(*z.shape[:-1], *SHAPE), 1.0), 3)

    @override
    def sample(self, num: int, y: Tensor | None = None, generator=None) -> Tensor:
        return self.decode(self.prior.sample(num)).mean


def table(num_points: int, latent_dim: int, seed: int = 0) -> TableModel:
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(num_points, latent_dim, generator=generator)
    scales = 0.3 + torch.rand(num_points, latent_dim, generator=generator)
    return TableModel(means, scales)


def indices(num: int) -> Tensor:
    return torch.arange(num, dtype=torch.float32).reshape(num, *SHAPE)


def exact_aggregate(model: TableModel) -> tuple[Distribution, Distribution]:
    """q(z) = (1/N) Σ_n q(z|x_n) and its per-dimension marginals q(z_d), as mixtures."""
    means, scales = model.means.detach(), model.log_scales.detach().exp()
    weights = Categorical(logits=torch.zeros(means.shape[0]))
    joint = MixtureSameFamily(weights, Independent(Normal(means, scales), 1))
    per_dim = Categorical(logits=torch.zeros(means.shape[1], means.shape[0]))
    marginals = MixtureSameFamily(per_dim, Normal(means.T, scales.T))  # batch [D]
    return joint, marginals


# -- β-TCVAE ---------------------------------------------------------------------------------
@pytest.mark.parametrize("full_covariance", [False, True])
def test_stratified_estimate_on_the_whole_data_set_is_the_exact_mixture_density(full_covariance):
    num_points, latent_dim = 7, 3
    model = table(num_points, latent_dim)
    torch.manual_seed(1)
    with torch.no_grad():
        posterior = model.encode(indices(num_points))
        z = posterior.sample()
        if full_covariance:  # the same Gaussians, as full-covariance distributions
            posterior = MultivariateNormal(posterior.mean, torch.diag_embed(posterior.variance))
        parts = decompose_kl(posterior, z, model.prior.log_prob(z), num_points, "stratified")
    joint, marginals = exact_aggregate(model)
    log_q_z = joint.log_prob(z)
    log_product = marginals.log_prob(z).sum(-1)
    torch.testing.assert_close(parts.mutual_information, posterior.log_prob(z) - log_q_z)
    torch.testing.assert_close(parts.total_correlation, log_q_z - log_product)
    torch.testing.assert_close(parts.dimension_wise_kl, log_product - model.prior.log_prob(z))
    # and the three parts add up to log q(z|x) − log p(z) of each code
    total = parts.mutual_information + parts.total_correlation + parts.dimension_wise_kl
    torch.testing.assert_close(total, posterior.log_prob(z) - model.prior.log_prob(z))


def test_weighted_sampling_is_the_papers_formula():
    """Chen et al. eq. 5: log Σ_j q(z_i|x_j) − log(N·B), here with B = 4 of N = 10."""
    pairs = torch.randn(4, 4)
    estimate = log_aggregate_density(pairs, 10, "weighted")
    by_hand = [math.log(sum(math.exp(v) for v in row) / 40) for row in pairs.tolist()]
    torch.testing.assert_close(estimate, torch.tensor(by_hand))


def test_stratified_sampling_is_unbiased_for_the_mixture_density_on_minibatches():
    """E over random batches of B = 3 of N = 8 of the stratified q(z_i) estimate (not its
    log) is the exact mixture density q(z_i), for a fixed code z_0 of data point 0."""
    num_points, batch_size = 8, 3
    model = table(num_points, 2, seed=3)
    joint, _ = exact_aggregate(model)
    torch.manual_seed(4)
    with torch.no_grad():
        z0 = model.encode(indices(1)).sample()[0]
        others = torch.rand(20000, num_points - 1).argsort(1)[:, : batch_size - 1] + 1
        batches = torch.cat([torch.zeros(len(others), 1, dtype=torch.long), others], 1)
        posterior = Independent(Normal(model.means[batches], model.log_scales[batches].exp()), 1)
        pair_log_densities = posterior.log_prob(z0)  # [draws, B]: q(z_0 | x_j), j in batch
        log_weights = torch.full(
            (batch_size,), math.log((num_points - 1) / (num_points * (batch_size - 1)))
        )
        log_weights[0] = -math.log(num_points)
        estimates = (pair_log_densities + log_weights).exp().sum(-1)
        # the objective's estimator gives the same numbers as these weights
        square = torch.full((batch_size, batch_size), -30.0)
        square[0] = pair_log_densities[0]
        assert log_aggregate_density(square, num_points, "stratified")[0].exp() == pytest.approx(
            estimates[0].item(), rel=1e-5
        )
    standard_error = estimates.std() / len(estimates) ** 0.5
    assert abs(estimates.mean() - joint.log_prob(z0).exp()) < 4 * standard_error


def test_the_parts_average_to_the_mean_kl_over_many_codes():
    num_points = 6
    model = table(num_points, 2, seed=5)
    x = indices(num_points).repeat(1, 1, 1, 1)
    torch.manual_seed(6)
    with torch.no_grad():
        posterior = model.encode(x)
        z = posterior.sample((400,))  # [draws, N, D]
        totals = []
        for codes in z:
            parts = decompose_kl(
                posterior, codes, model.prior.log_prob(codes), num_points, "stratified"
            )
            totals.append(
                parts.mutual_information + parts.total_correlation + parts.dimension_wise_kl
            )
        totals = torch.stack(totals).mean(-1)  # the batch mean, per draw
    mean_kl = kl_divergence(posterior, model.prior.distribution()).mean()
    assert abs(totals.mean() - mean_kl) < 4 * totals.std() / len(totals) ** 0.5


def test_beta_tcvae_with_unit_weights_is_the_elbo():
    num_points = 9
    model = table(num_points, 3, seed=7)
    x = indices(num_points)
    weighting = ConstantBeta(1.0)
    elbo, tcvae = ELBO(), BetaTCVAE(alpha=1.0, gamma=1.0)
    elbo.setup(model, weighting, {})
    tcvae.setup(model, weighting, {"num_train": 100})
    torch.manual_seed(8)
    reference = elbo(model, x, None, weighting, 0)
    torch.manual_seed(8)
    out = tcvae(model, x, None, weighting, 0)
    torch.testing.assert_close(out.bound, reference.bound)
    torch.testing.assert_close(out.loss, -reference.bound)
    # other weights move the loss by exactly (w − 1) × their term
    tcvae = BetaTCVAE(alpha=2.0, gamma=0.5)
    tcvae.setup(model, ConstantBeta(4.0), {"num_train": 100})
    torch.manual_seed(8)
    weighted = tcvae(model, x, None, ConstantBeta(4.0), 0)
    terms = weighted.terms
    expected = (
        -reference.bound
        + terms["mutual_information"]
        + 3 * terms["total_correlation"]
        - 0.5 * terms["dimension_wise_kl"]
    )
    torch.testing.assert_close(weighted.loss, expected)


def test_beta_tcvae_takes_the_split_size_from_the_data_and_refuses_what_does_not_fit():
    model = table(5, 2)
    tcvae = BetaTCVAE()
    tcvae.setup(model, ConstantBeta(1.0), {})
    with pytest.raises(VaelabError, match="num_train"):
        tcvae(model, indices(5), None, ConstantBeta(1.0), 0)
    tcvae.setup(model, ConstantBeta(1.0), {"num_train": 50, "num_val": 5})
    assert tcvae.dataset_size("train") == 50
    assert tcvae.dataset_size("val") == 5
    # the split the batch comes from reaches the estimator of log q(z)
    x = indices(5)

    def total_correlation(split: str) -> torch.Tensor:
        torch.manual_seed(0)  # the same codes for both splits
        return tcvae(model, x, None, ConstantBeta(1.0), 0, split=split).terms["total_correlation"]

    assert not torch.allclose(total_correlation("train"), total_correlation("val"))
    with pytest.raises(VaelabError, match="prior=standard_normal"):
        BetaTCVAE().setup(
            TableModel(torch.zeros(3, 2), torch.ones(3, 2), MixturePrior(3)), ConstantBeta(1.0), {}
        )
    with pytest.raises(VaelabError, match="reshapes a KL"):
        BetaTCVAE().setup(model, FreeBits(0.5), {})
    with pytest.raises(VaelabError, match="stratified"):
        BetaTCVAE(estimator="exact")


# -- FactorVAE --------------------------------------------------------------------------------
def test_permute_dims_shuffles_each_dimension_within_the_batch():
    torch.manual_seed(0)
    z = torch.arange(40.0).reshape(10, 4) * torch.tensor([1.0, 100.0, 1e4, 1e6])
    shuffled = permute_dims(z)
    for d in range(4):  # the same values in every column, in another order
        assert torch.equal(shuffled[:, d].sort().values, z[:, d].sort().values)
    assert not torch.equal(shuffled, z)
    # rows mix columns of different data points: the joint is broken
    assert (shuffled[:, 0] / 1 != shuffled[:, 1] / 100).any()


class CorrelatedCodes(LatentVariableModel):
    """q(z|x) = N(x, 10⁻⁶ I) for x drawn from a correlated Gaussian: q(z) is that Gaussian."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.input_shape, self.latent_dim = (1, 1, latent_dim), latent_dim
        self._prior = StandardNormalPrior()
        self._prior.setup(latent_dim, self.input_shape, self.encode)

    @property
    def prior(self) -> nn.Module:
        return self._prior

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(x.flatten(1), 1e-6), 1)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(z.reshape(-1, *self.input_shape), 1.0), 3)

    @override
    def sample(self, num: int, y: Tensor | None = None, generator=None) -> Tensor:
        return self.decode(self.prior.sample(num)).mean


@pytest.mark.slow
def test_the_discriminator_estimates_the_total_correlation_of_a_correlated_gaussian():
    """TC of N(0, R) is −½ log det R; R here: unit variances, correlation 0.8 between z_0
    and z_1 (TC = −½ log 0.36 = 0.511 nats)."""
    torch.manual_seed(0)
    correlation = torch.tensor([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    codes = MultivariateNormal(torch.zeros(3), correlation)
    model = CorrelatedCodes(3)
    factor_vae = FactorVAE(discriminator_width=64, discriminator_depth=2)
    factor_vae.setup(model, ConstantBeta(1.0), {})
    optimizer = torch.optim.Adam(factor_vae.adversary_parameters(), lr=3e-3)
    for _ in range(600):
        x = codes.sample((512,)).reshape(512, 1, 1, 3)
        step = factor_vae.adversary_step(model, x, None, None)
        optimizer.zero_grad()
        step.loss.backward()
        optimizer.step()
    with torch.no_grad():
        x = codes.sample((20000,)).reshape(20000, 1, 1, 3)
        estimate = factor_vae(model, x, None, ConstantBeta(1.0), 0).terms["total_correlation"]
    exact = -0.5 * torch.logdet(correlation).item()
    assert exact == pytest.approx(0.5108, abs=1e-4)
    assert estimate.mean().item() == pytest.approx(exact, abs=0.08)
    assert 0.5 < step.terms["discriminator_accuracy"] < 0.75  # better than chance, not perfect


def test_factor_vae_adds_gamma_times_the_discriminator_estimate_to_the_beta_vae_loss():
    model = table(8, 2)
    x = indices(8)
    factor_vae = FactorVAE(gamma=7.0, discriminator_width=8, discriminator_depth=1)
    factor_vae.setup(model, ConstantBeta(2.0), {})
    torch.manual_seed(3)
    out = factor_vae(model, x, None, ConstantBeta(2.0), 0)
    torch.testing.assert_close(
        out.loss,
        out.terms["recon"] + 2.0 * out.terms["kl"] + 7.0 * out.terms["total_correlation"],
    )
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))
    assert factor_vae.adversary_optimizer is not None


# -- DIP-VAE ----------------------------------------------------------------------------------
def whitened(num: int, latent_dim: int, seed: int) -> Tensor:
    """``num`` points whose population covariance is exactly the identity."""
    points = torch.randn(num, latent_dim, generator=torch.Generator().manual_seed(seed))
    points = points - points.mean(0)
    covariance = points.T @ points / num
    return points @ torch.linalg.inv(torch.linalg.cholesky(covariance)).T


def test_dip_regulariser_vanishes_for_codes_with_identity_covariance():
    means = whitened(50, 3, seed=0).double()
    tiny = torch.full_like(means, 1e-4)
    penalty = covariance_penalty(code_covariance(Independent(Normal(means, tiny), 1), "i"))
    assert penalty.off_diagonal.item() == pytest.approx(0, abs=1e-12)
    assert penalty.diagonal.item() == pytest.approx(0, abs=1e-12)
    # DIP-VAE-II: means with covariance ½ I and variances ½ make Cov q(z) = I
    halves = Independent(Normal(means * math.sqrt(0.5), torch.full_like(means, math.sqrt(0.5))), 1)
    penalty = covariance_penalty(code_covariance(halves, "ii"))
    assert penalty.off_diagonal.item() == pytest.approx(0, abs=1e-12)
    assert penalty.diagonal.item() == pytest.approx(0, abs=1e-12)


def test_dip_regulariser_matches_a_hand_computation():
    means = [[1.0, 2.0], [3.0, 0.0], [-1.0, 1.0]]
    variances = [[0.5, 1.0], [1.5, 2.0], [1.0, 0.0 + 3.0]]
    # by hand: mean (1, 1); centred rows (0, 1), (2, −1), (−2, 0)
    # Cov μ = [[8, −2], [−2, 2]] / 3; E Σ = diag(1, 2)
    cov_i = [[8 / 3, -2 / 3], [-2 / 3, 2 / 3]]
    cov_ii = [[8 / 3 + 1, -2 / 3], [-2 / 3, 2 / 3 + 2]]
    posterior = Independent(Normal(torch.tensor(means), torch.tensor(variances).sqrt()), 1)
    for variant, cov in (("i", cov_i), ("ii", cov_ii)):
        penalty = covariance_penalty(code_covariance(posterior, variant))
        assert penalty.off_diagonal.item() == pytest.approx(2 * cov[0][1] ** 2)
        assert penalty.diagonal.item() == pytest.approx((cov[0][0] - 1) ** 2 + (cov[1][1] - 1) ** 2)
    # through the objective: λ_od, λ_d weight the two sums on top of the ELBO's loss
    model = TableModel(torch.tensor(means), torch.tensor(variances).sqrt())
    dip = DIPVAE("ii", lambda_off_diagonal=3.0, lambda_diagonal=5.0)
    dip.setup(model, ConstantBeta(1.0), {})
    out = dip(model, indices(3), None, ConstantBeta(1.0), 0)
    regulariser = 3.0 * 2 * cov_ii[0][1] ** 2 + 5.0 * (
        (cov_ii[0][0] - 1) ** 2 + (cov_ii[1][1] - 1) ** 2
    )
    torch.testing.assert_close(out.loss, out.terms["recon"] + out.terms["kl"] + regulariser)
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))


def test_dip_vae_refuses_a_prior_other_than_the_standard_normal():
    model = TableModel(torch.zeros(3, 2), torch.ones(3, 2), MixturePrior(3))
    with pytest.raises(VaelabError, match="prior=standard_normal"):
        DIPVAE("i").setup(model, ConstantBeta(1.0), {})
    with pytest.raises(VaelabError, match="variant"):
        DIPVAE("iii")


# -- every objective with every posterior and prior --------------------------------------------
def small_vae(posterior: str, prior: str) -> VAE:
    posteriors = {"diagonal": DiagonalGaussianPosterior, "full": FullCovarianceGaussianPosterior}
    priors = {
        "standard_normal": StandardNormalPrior,
        "mixture": lambda: MixturePrior(3),
        "vamp": lambda: VampPrior(num_pseudo_inputs=4),
    }
    return VAE(
        partial(mlp, hidden_dims=(16,)),
        latent_dim=3,
        input_shape=(1, 4, 4),
        posterior=posteriors[posterior](),
        likelihood=BernoulliLikelihood(),
        prior=priors[prior](),
    )


ALL_OBJECTIVES = {
    "beta_tcvae": lambda: BetaTCVAE(),
    "factor_vae": lambda: FactorVAE(discriminator_width=8, discriminator_depth=1),
    "dip_vae_i": lambda: DIPVAE("i"),
    "dip_vae_ii": lambda: DIPVAE("ii"),
    "info_vae": lambda: InfoVAE(),
    "wae_mmd": lambda: WAEMMD(deterministic_encoder=False),
}
#: the pairs that must be refused: a dimension-wise KL or an identity covariance needs N(0, I)
REFUSED = {("beta_tcvae", "mixture"), ("beta_tcvae", "vamp")} | {
    (dip, prior) for dip in ("dip_vae_i", "dip_vae_ii") for prior in ("mixture", "vamp")
}


@pytest.mark.parametrize("objective_name", sorted(ALL_OBJECTIVES))
def test_each_objective_runs_or_refuses_with_every_posterior_and_prior(objective_name):
    torch.manual_seed(0)
    x = torch.rand(6, 1, 4, 4).round()
    for posterior in ("diagonal", "full"):
        for prior in ("standard_normal", "mixture", "vamp"):
            model, objective = small_vae(posterior, prior), ALL_OBJECTIVES[objective_name]()
            if (objective_name, prior) in REFUSED:
                with pytest.raises(VaelabError, match="prior=standard_normal"):
                    objective.setup(model, ConstantBeta(1.0), {"num_train": 100})
                continue
            objective.setup(model, ConstantBeta(1.0), {"num_train": 100})
            out = objective(model, x, None, ConstantBeta(1.0), 0)
            values = [out.loss, *out.terms.values()] + (
                [out.bound] if out.bound is not None else []
            )
            assert all(v.shape == (6,) and torch.isfinite(v).all() for v in values), (
                posterior,
                prior,
            )
            out.loss.mean().backward()  # the loss trains the encoder
            assert any(p.grad.abs().sum() > 0 for p in model.encoder.parameters())
