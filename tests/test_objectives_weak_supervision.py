"""vaelab.objectives.weak_supervision: Ada-GVAE and Ada-ML-VAE (Locatello et al. 2020) — the
adaptive threshold on δ = KL(q(zᵢ|x₁) ‖ q(zᵢ|x₂)) by hand, the two aggregates against their
closed forms, shared dimensions identical between the views, the β-VAE when every dimension
changes, and the one-line refusals; a fast_dev_run on XYObject pairs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from tests.conftest import DETERMINISTIC
from tests.latent_family_runs import resume_matches_straight_run, short_mnist_run_improves
from tests.linear_gaussian import small_mlp_vae
from vaelab.errors import VaelabError
from vaelab.objectives import ELBO
from vaelab.objectives.weak_supervision import (
    AdaGVAE,
    AdaMLVAE,
    DiagonalGaussian,
    pair_divergence,
    shared_by_threshold,
)
from vaelab.schedules import ConstantBeta
from vaelab.train import train

PAIRS = {"input_shape": (1, 4, 4), "pairs": "random"}


def _posterior(mean, variance) -> Independent:
    mean, variance = torch.as_tensor(mean), torch.as_tensor(variance)
    return Independent(Normal(mean, variance.sqrt()), 1)


def test_the_adaptive_threshold_by_hand():
    divergence = torch.tensor([[0.0, 0.1, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    # τ = ½(4 + 0) = 2: δ < 2 is shared; all δ equal: none is below τ
    expected = torch.tensor([[True, True, False, False], [False] * 4])
    assert torch.equal(shared_by_threshold(divergence), expected)


def test_pair_divergence_is_the_kl_of_each_dimension():
    first = DiagonalGaussian(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.25]]))
    second = DiagonalGaussian(torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 1.0]]))
    by_hand = [
        0.5 * (v1 / v2 + (m2 - m1) ** 2 / v2 - 1 + math.log(v2 / v1))
        for m1, v1, m2, v2 in ((0.0, 1.0, 0.5, 2.0), (1.0, 0.25, -1.0, 1.0))
    ]
    torch.testing.assert_close(pair_divergence(first, second), torch.tensor([by_hand]))


@pytest.mark.parametrize("objective", [AdaGVAE(), AdaMLVAE()], ids=["gvae", "ml_vae"])
def test_shared_dimensions_are_identical_between_the_views(objective):
    torch.manual_seed(0)
    mean, variance = torch.randn(8, 6), torch.rand(8, 6) + 0.1
    mean[4:, :3] = mean[:4, :3] + 0.01  # the pairs agree on their first three dimensions
    variance[4:, :3] = variance[:4, :3]
    adapted = objective.adapted_posteriors(_posterior(mean, variance))
    shared = adapted.shared
    assert torch.equal(shared[:4], shared[4:])  # one decision per pair
    assert shared[:, :3].all()
    q = adapted.posterior
    for moment, own in ((q.mean, mean), (q.variance, variance)):
        assert torch.equal(moment[:4][shared[:4]], moment[4:][shared[4:]])
        torch.testing.assert_close(moment[~shared], own[~shared])  # the others: their own


def test_the_gvae_aggregate_is_the_average_of_the_moments():
    first = DiagonalGaussian(torch.tensor([[1.0]]), torch.tensor([[0.5]]))
    second = DiagonalGaussian(torch.tensor([[3.0]]), torch.tensor([[1.5]]))
    both = AdaGVAE().aggregate(first, second)
    assert (both.mean.item(), both.variance.item()) == (2.0, 1.0)


def test_the_ml_vae_aggregate_is_the_normalised_product_of_the_two_experts():
    """q̃ ∝ q₁^½ q₂^½: ½ log q₁(z) + ½ log q₂(z) − log q̃(z) is the same for every z."""
    double = {"dtype": torch.float64}
    first = DiagonalGaussian(torch.tensor([[1.0]], **double), torch.tensor([[0.5]], **double))
    second = DiagonalGaussian(torch.tensor([[3.0]], **double), torch.tensor([[2.0]], **double))
    both = AdaMLVAE().aggregate(first, second)
    z = torch.linspace(-3, 6, 7, **double)

    def log_density(q):
        return Normal(q.mean, q.variance.sqrt()).log_prob(z)[0]

    gap = 0.5 * log_density(first) + 0.5 * log_density(second) - log_density(both)
    torch.testing.assert_close(gap, gap[:1].expand(7), rtol=0, atol=1e-9)
    same = AdaMLVAE().aggregate(first, first)  # identical views keep their posterior
    assert (same.mean.item(), same.variance.item()) == (1.0, 0.5)


def test_with_every_dimension_changed_it_is_the_beta_vae():
    vae, x = small_mlp_vae()  # latent 3, 6 observations: 3 pairs
    weighting = ConstantBeta(4.0)
    weak, elbo = AdaGVAE(changed_dimensions=3), ELBO()
    weak.setup(vae, weighting, PAIRS)
    elbo.setup(vae, weighting, {})
    torch.manual_seed(1)
    ours = weak(vae, x, None, weighting, 0)
    torch.manual_seed(1)
    theirs = elbo(vae, x, None, weighting, 0)
    assert (ours.terms["shared_dims"] == 0).all()
    for name in ("recon", "kl"):
        torch.testing.assert_close(ours.terms[name], theirs.terms[name])
    torch.testing.assert_close(ours.loss, theirs.loss)
    torch.testing.assert_close(ours.bound, theirs.bound)


def test_the_loss_is_the_beta_weighted_bound_of_the_adapted_posteriors():
    vae, x = small_mlp_vae()
    weighting = ConstantBeta(4.0)
    objective = AdaMLVAE()
    objective.setup(vae, weighting, PAIRS)
    out = objective(vae, x, None, weighting, 0)
    torch.testing.assert_close(out.loss, out.terms["recon"] + 4.0 * out.terms["kl"])
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))
    q = objective.adapted_posteriors(vae.encode(x)).posterior.distribution()
    kl = kl_divergence(q, Independent(Normal(torch.zeros(6, 3), torch.ones(6, 3)), 1))
    torch.testing.assert_close(out.terms["kl"], kl)
    assert out.loss.requires_grad


def test_data_without_pairs_and_odd_batches_are_refused_in_one_line():
    vae, x = small_mlp_vae()
    objective, weighting = AdaGVAE(), ConstantBeta(1.0)
    with pytest.raises(VaelabError, match=r"single observations: use .*changed_factors") as err:
        objective.setup(vae, weighting, {"input_shape": (1, 4, 4)})
    assert "\n" not in str(err.value)
    with pytest.raises(VaelabError, match="exceeds the latent size 3"):
        AdaGVAE(changed_dimensions=4).setup(vae, weighting, PAIRS)
    objective.setup(vae, weighting, PAIRS)
    with pytest.raises(VaelabError, match="got 5 observations"):
        objective(vae, x[:5], None, weighting, 0)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["ada_gvae", "ada_ml_vae"])
def test_a_fast_dev_run_on_pairs_trains(objective, make_config):
    cfg = make_config(
        "data=xy_object",
        "data.changed_factors=random",
        "data.batch_size=8",
        "data.eval_batch_size=8",
        "model=mlp",
        "model.net.hidden_dims=[16]",
        f"objective={objective}",
        "trainer.fast_dev_run=true",
        "callbacks=none",
        "logger=[]",
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["test/loss"])
    assert 0 <= metrics["test/shared_dims"] <= cfg.model.latent_dim


#: XYObject pairs (1 channel), a small network and test batches of 32 pairs: the shared
#: latent-family runs' checks at a size a CPU runs in a minute
PAIR_RUN = [
    "data=xy_object",
    "data.palette=greys",
    "data.changed_factors=random",
    "data.eval_batch_size=32",
    "model=mlp",
    "model.latent_dim=4",
]


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["ada_gvae", "ada_ml_vae"])
def test_a_short_run_on_pairs_improves_its_bound(objective, tmp_path):
    short_mnist_run_improves([*PAIR_RUN, f"objective={objective}"], tmp_path / "data", tmp_path)


@pytest.mark.slow
def test_a_resumed_run_on_pairs_ends_where_a_straight_one_does(tmp_path):
    base = [o for o in DETERMINISTIC if not o.startswith("data.binarize")]  # XYObject: 0/1 already
    resume_matches_straight_run(
        [*PAIR_RUN, "objective=ada_gvae"], tmp_path / "data", tmp_path, base=base
    )
