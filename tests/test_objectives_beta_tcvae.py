"""vaelab.objectives.beta_tcvae, β-TCVAE (Chen et al. 2018), against exact small cases and
closed forms.

The model of most tests is a table (tests/table_model.py): data point n is the 1×1×1 image
holding n, and q(z|x_n) = N(μ_n, diag σ_n²) is read from a table, so the aggregate posterior of
the data set is an exact Gaussian mixture (torch.distributions.MixtureSameFamily).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

from tests.table_model import TableModel, indices, table
from vaelab.errors import VaelabError
from vaelab.objectives import ELBO
from vaelab.objectives.beta_tcvae import BetaTCVAE, decompose_kl, log_aggregate_density
from vaelab.priors.mixture import MixturePrior
from vaelab.schedules import ConstantBeta, FreeBits


def exact_aggregate(model: TableModel) -> tuple[Distribution, Distribution]:
    """q(z) = (1/N) Σ_n q(z|x_n) and its per-dimension marginals q(z_d), as mixtures."""
    means, scales = model.means.detach(), model.log_scales.detach().exp()
    weights = Categorical(logits=torch.zeros(means.shape[0]))
    joint = MixtureSameFamily(weights, Independent(Normal(means, scales), 1))
    per_dim = Categorical(logits=torch.zeros(means.shape[1], means.shape[0]))
    marginals = MixtureSameFamily(per_dim, Normal(means.T, scales.T))  # batch [D]
    return joint, marginals


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
