"""The MMD U-statistic, InfoVAE and WAE-MMD against hand-written sums and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from tests.table_model import TableModel, indices, table
from vaelab.errors import VaelabError
from vaelab.objectives.info_vae import InfoVAE
from vaelab.objectives.mmd import (
    inverse_multiquadric_kernel,
    mmd_u_statistic,
    rbf_kernel,
)
from vaelab.objectives.wae_mmd import WAEMMD
from vaelab.schedules import ConstantBeta, LinearWarmup

SCALE = 1.7


def hand_kernel(name: str, a: list[float], b: list[float], scale: float) -> float:
    squared = sum((u - v) ** 2 for u, v in zip(a, b, strict=True))
    return math.exp(-squared / scale) if name == "rbf" else scale / (scale + squared)


def hand_mmd(
    name: str, xs: list[list[float]], ys: list[list[float]], scale: float = SCALE
) -> float:
    """The U-statistic as three double loops (Gretton et al. 2012, eq. 3)."""
    n, m = len(xs), len(ys)

    def k(a: list[float], b: list[float]) -> float:
        return hand_kernel(name, a, b, scale)

    within_x = sum(k(xs[i], xs[j]) for i in range(n) for j in range(n) if i != j)
    within_y = sum(k(ys[i], ys[j]) for i in range(m) for j in range(m) if i != j)
    between = sum(k(x, y) for x in xs for y in ys)
    return within_x / (n * (n - 1)) + within_y / (m * (m - 1)) - 2 * between / (n * m)


KERNEL_FUNCTIONS = {"rbf": rbf_kernel, "imq": inverse_multiquadric_kernel}


@pytest.mark.parametrize("name", ["rbf", "imq"])
def test_mmd_matches_a_double_loop(name):
    generator = torch.Generator().manual_seed(0)
    xs = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    ys = 0.5 + torch.randn(5, 3, generator=generator, dtype=torch.float64)
    kernel = KERNEL_FUNCTIONS[name]
    estimate = mmd_u_statistic(xs, ys, lambda a, b: kernel(a, b, SCALE))
    assert estimate.item() == pytest.approx(hand_mmd(name, xs.tolist(), ys.tolist()), rel=1e-12)


@pytest.mark.parametrize("name", ["rbf", "imq"])
def test_mmd_is_unbiased_for_equal_distributions_and_positive_for_different_ones(name):
    torch.manual_seed(1)
    kernel = KERNEL_FUNCTIONS[name]
    draws = 4000

    def estimates(shift: float) -> torch.Tensor:
        xs = torch.randn(draws, 8, 2)
        ys = shift + torch.randn(draws, 8, 2)
        return mmd_u_statistic(xs, ys, lambda a, b: kernel(a, b, SCALE))  # one per draw

    same = estimates(0.0)
    assert abs(same.mean()) < 4 * same.std() / draws**0.5
    assert (same < 0).any()  # unbiased, so single estimates go below 0
    shifted = estimates(1.0)
    assert shifted.mean() > 10 * shifted.std() / draws**0.5


def test_info_vae_weights_the_kl_and_the_mmd_and_keeps_the_elbo():
    model = table(10, 2, seed=2)
    x = indices(10)
    info = InfoVAE(alpha=0.25, lambda_=3.0, kernel="rbf")
    info.setup(model, ConstantBeta(1.0), {})
    torch.manual_seed(3)
    out = info(model, x, None, ConstantBeta(1.0), 0)
    terms = out.terms
    torch.testing.assert_close(out.loss, terms["recon"] + 0.75 * terms["kl"] + 2.25 * terms["mmd"])
    torch.testing.assert_close(out.bound, -(terms["recon"] + terms["kl"]))
    assert torch.equal(terms["mmd"], terms["mmd"][0].expand(10))  # one batch-level value
    # α = 0, λ = 1 is the ELBO
    elbo_like = InfoVAE(alpha=0.0, lambda_=1.0)
    elbo_like.setup(model, ConstantBeta(1.0), {})
    out = elbo_like(model, x, None, ConstantBeta(1.0), 0)
    torch.testing.assert_close(out.loss, -out.bound)


def test_info_vae_and_wae_refuse_bad_weights_and_a_beta_schedule():
    model = table(4, 2)
    with pytest.raises(VaelabError, match=r"objective\.alpha=1\.5 must be a number <= 1"):
        InfoVAE(alpha=1.5)
    with pytest.raises(VaelabError, match="weights the MMD"):
        InfoVAE(alpha=0.0, lambda_=0.5)
    with pytest.raises(VaelabError, match=r"objective\.kernel=laplace must be one of imq, rbf"):
        WAEMMD(kernel="laplace")
    for objective in (InfoVAE(), WAEMMD()):
        with pytest.raises(VaelabError, match=r"beta=constant beta\.value=1\.0"):
            objective.setup(model, LinearWarmup(100), {})


def test_wae_codes_with_the_encoder_mean_and_has_no_elbo():
    means = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-1.0, 1.0], [0.0, 0.0]])
    model = TableModel(means, torch.full_like(means, 0.7))
    x = indices(4)
    wae = WAEMMD(lambda_=5.0, kernel="imq")
    wae.setup(model, ConstantBeta(1.0), {})
    assert wae.logged_names() == ("recon", "mmd")  # no elbo to log
    torch.manual_seed(0)
    out = wae(model, x, None, ConstantBeta(1.0), 0)
    # deterministic: recon is −log N(n; Σ_d μ_nd, 1), with no sampling
    expected = [
        0.5 * (n - sum(row)) ** 2 + 0.5 * math.log(2 * math.pi)
        for n, row in enumerate(means.tolist())
    ]
    torch.testing.assert_close(out.terms["recon"], torch.tensor(expected))
    assert out.bound is None
    torch.testing.assert_close(out.loss, out.terms["recon"] + 5.0 * out.terms["mmd"])
    # the MMD is against as many prior draws, with C = 2·D
    torch.manual_seed(0)
    prior_codes = model.prior.sample(4)
    assert out.terms["mmd"][0].item() == pytest.approx(
        hand_mmd("imq", means.tolist(), prior_codes.tolist(), scale=4.0), rel=1e-5
    )
    stochastic = WAEMMD(deterministic_encoder=False)
    stochastic.setup(model, ConstantBeta(1.0), {})
    assert set(stochastic.logged_names()) == {"recon", "mmd", "elbo", "kl"}
    out = stochastic(model, x, None, ConstantBeta(1.0), 0)
    torch.testing.assert_close(out.terms["elbo"], -(out.terms["recon"] + out.terms["kl"]))
