"""vaelab.objectives.dip_vae, DIP-VAE (Kumar et al. 2018): the regulariser against codes with
identity covariance and a hand computation; a prior other than the standard normal is refused."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.distributions import (
    Independent,
    Normal,
)

from tests.table_model import TableModel, indices
from vaelab.errors import VaelabError
from vaelab.objectives.dip_vae import DIPVAE, code_covariance, covariance_penalty
from vaelab.priors.mixture import MixturePrior
from vaelab.schedules import ConstantBeta


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
    with pytest.raises(VaelabError, match=r"objective\.variant=iii must be one of i, ii"):
        DIPVAE("iii")
