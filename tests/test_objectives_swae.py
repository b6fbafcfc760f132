"""vaelab.objectives.swae: the sliced Wasserstein distance against closed forms (0 for identical
samples; W₂² between one-dimensional Gaussians; the mean over directions for isotropic ones),
its decrease under gradient descent, and what SWAE logs and refuses."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from tests.conftest import DETERMINISTIC
from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_lowers_the_validation_loss,
)
from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.objectives.swae import SWAE, random_directions, sliced_wasserstein
from vaelab.schedules.constant import ConstantBeta


def gaussian_quantiles(mean: float, std: float, n: int, dim: int = 1) -> torch.Tensor:
    """n evenly spaced quantiles of N(mean, std²) in each of ``dim`` coordinates: [n, dim]."""
    levels = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    column = Normal(torch.tensor(mean, dtype=torch.float64), std).icdf(levels)
    return column.unsqueeze(1).expand(n, dim).clone()


def test_identical_samples_are_at_distance_zero():
    torch.manual_seed(0)
    codes = torch.randn(64, 5)
    directions = random_directions(50, 5, codes)
    assert torch.allclose(directions.norm(dim=1), torch.ones(50))
    shuffled = codes[torch.randperm(64)]  # the same empirical distribution
    assert sliced_wasserstein(codes, shuffled, directions, 2.0) == pytest.approx(0.0, abs=1e-12)


def test_one_dimensional_gaussians_match_the_closed_form_w2():
    (m1, s1), (m2, s2) = (0.5, 1.0), (-1.0, 2.0)
    a, b = gaussian_quantiles(m1, s1, 20000), gaussian_quantiles(m2, s2, 20000)
    directions = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)  # S⁰
    # W₂²(N(m1, s1²), N(m2, s2²)) = (m1 − m2)² + (s1 − s2)²
    expected = (m1 - m2) ** 2 + (s1 - s2) ** 2
    assert sliced_wasserstein(a, b, directions, 2.0).item() == pytest.approx(expected, rel=2e-3)


def test_isotropic_gaussians_average_the_projected_closed_form_over_directions():
    """θ·z of N(m, s² I) is N(θ·m, s²) for a unit θ: SW₂² = mean_l (θ_l·Δm)² + (s1 − s2)²
    (→ ‖Δm‖²/D over the sphere). b = 2a + Δm keeps the sample noise of two draws out."""
    torch.manual_seed(0)
    dim, n = 4, 2000
    shift = torch.tensor([1.0, -2.0, 0.0, 2.0], dtype=torch.float64)
    a = torch.randn(n, dim, dtype=torch.float64)
    b = 2.0 * a + shift
    directions = random_directions(200, dim, a)
    expected = (directions @ shift).square().mean().item() + (1.0 - 2.0) ** 2
    assert sliced_wasserstein(a, b, directions, 2.0).item() == pytest.approx(expected, rel=0.03)
    assert expected == pytest.approx(shift.square().sum().item() / dim + 1, rel=0.15)


def test_descending_the_sliced_distance_moves_codes_towards_the_prior():
    torch.manual_seed(0)
    codes = (3.0 * torch.randn(64, 3) + 2.0).requires_grad_()
    prior = torch.randn(64, 3)
    optimizer = torch.optim.Adam([codes], lr=0.1)
    distances = []
    for _ in range(40):
        distance = sliced_wasserstein(codes, prior, random_directions(20, 3, codes), 2.0)
        optimizer.zero_grad()
        distance.backward()
        optimizer.step()
        distances.append(distance.item())
    assert distances[-1] < 0.1 * distances[0]
    assert codes.detach().mean().abs() < 0.5


def test_p_one_is_the_mean_absolute_difference_of_sorted_projections():
    a = torch.tensor([[0.0], [1.0], [5.0]])
    b = torch.tensor([[2.0], [0.0], [1.0]])
    one = torch.tensor([[1.0]])
    # sorted: (0, 1, 5) against (0, 1, 2): |0| + |0| + |3|, over 3
    assert sliced_wasserstein(a, b, one, 1.0).item() == pytest.approx(1.0)
    assert sliced_wasserstein(a, b, one, 2.0).item() == pytest.approx(3.0)


def test_swae_logs_no_elbo_with_its_deterministic_encoder(make_config):
    module = build_module(make_config("data=digits", "objective=swae"), (1, 8, 8))
    assert module.metric_names == ("loss", "recon", "sliced_wasserstein")
    assert not module.has_bound
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    out = module(x)
    objective = module.objective
    z = module.model.encode(x).mean
    recon = -module.model.decode(z).log_prob(x)
    assert torch.allclose(out.terms["recon"], recon)
    assert torch.allclose(out.loss, recon + 100.0 * out.terms["sliced_wasserstein"])
    assert objective.resolved_choices() == {}


def test_swae_with_a_stochastic_encoder_logs_the_elbo_as_a_term(make_config):
    cfg = make_config("data=digits", "objective=swae", "objective.deterministic_encoder=false")
    module = build_module(cfg, (1, 8, 8))
    assert module.metric_names == ("loss", "recon", "sliced_wasserstein", "elbo", "kl")
    out = module(torch.rand(8, 1, 8, 8))
    assert torch.allclose(out.terms["elbo"], -(out.terms["recon"] + out.terms["kl"]))


def test_swae_refuses_beta_and_unequal_batches():
    swae = SWAE()
    with pytest.raises(VaelabError, match="λ weights the sliced Wasserstein distance"):
        swae.check_weighting(ConstantBeta(4.0))
    with pytest.raises(VaelabError, match="as many codes as prior draws"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(4, 2), torch.ones(1, 2), 2.0)
    assert math.isfinite(SWAE().lambda_)


#: the deterministic short run without a β schedule (SWAE's λ replaces β)
CONSTANT_BETA = [o for o in DETERMINISTIC if not o.startswith("beta")]


@pytest.mark.slow
def test_a_short_mnist_run_lowers_the_swae_loss_and_its_sliced_distance(mnist_data_dir, tmp_path):
    one_step, trained = training_lowers_the_validation_loss(
        ["objective=swae"],
        mnist_data_dir,
        tmp_path,
        train_batches=100,
        val_batches=2,
        logs_no_bound=True,
    )
    assert trained["val/sliced_wasserstein"] < one_step["val/sliced_wasserstein"]


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    resume_matches_straight_run(
        ["objective=swae"], mnist_data_dir, tmp_path, base=CONSTANT_BETA, metric="val/loss"
    )
