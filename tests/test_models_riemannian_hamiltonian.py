"""The Riemannian Hamiltonian VAE (models/riemannian_hamiltonian.py): the metric is symmetric
positive definite, the generalised leapfrog's fixed-point iterations converge (residuals below
tolerance) and the converged step preserves volume and is reversible, the stored centroids and
the manifold sampler, and a short MNIST run that improves and resumes exactly."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import DETERMINISTIC
from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_raises_the_validation_elbo,
)
from vaelab.likelihoods import BernoulliLikelihood
from vaelab.models.hamiltonian import PhasePoint
from vaelab.models.riemannian_hamiltonian import (
    KernelMetric,
    MetricNetwork,
    RiemannianHamiltonianVAE,
    generalised_leapfrog,
    inverse_metric,
    riemannian_hamiltonian,
)
from vaelab.nets.mlp import mlp

SHAPE = (1, 4, 4)


def small_rhvae(**options) -> tuple[RiemannianHamiltonianVAE, torch.Tensor]:
    torch.manual_seed(3)
    model = RiemannianHamiltonianVAE(
        lambda **s: mlp(hidden_dims=(8,), **s),
        3,
        SHAPE,
        likelihood=BernoulliLikelihood(),
        metric_hidden_dims=(8,),
        num_centroids=8,
        **options,
    )
    return model, torch.bernoulli(torch.full((6, *SHAPE), 0.4))


def random_metric(dim: int = 3, count: int = 5):
    torch.manual_seed(0)
    network = MetricNetwork(16, dim, (8,)).double()
    factors = network(torch.rand(count, *SHAPE, dtype=torch.float64))
    centroids = torch.randn(count, dim, dtype=torch.float64)
    return centroids, factors


def test_metric_is_symmetric_positive_definite_and_matches_its_definition():
    centroids, factors = random_metric()
    assert torch.equal(factors.triu(1), torch.zeros_like(factors))  # lower-triangular
    z = 3 * torch.randn(50, 3, dtype=torch.float64)
    g_inv = inverse_metric(z, centroids, factors, temperature=0.8, regularisation=1e-3)
    torch.testing.assert_close(g_inv, g_inv.transpose(-1, -2), rtol=0, atol=0)
    assert bool((torch.linalg.eigvalsh(g_inv) >= 1e-3 - 1e-12).all())  # ≥ λ
    by_hand = 1e-3 * torch.eye(3, dtype=torch.float64) + sum(
        torch.exp(-((z[7] - c) ** 2).sum() / 0.64) * (f @ f.T)
        for c, f in zip(centroids, factors, strict=True)
    )
    torch.testing.assert_close(g_inv[7], by_hand)


def quadratic_potential(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (z**2).sum(-1) + 0.1 * (z**4).sum(-1)


def quadratic_potential_gradient(z: torch.Tensor) -> torch.Tensor:
    return z + 0.4 * z**3


def test_closed_form_hamiltonian_gradient_equals_autograd():
    """∇_z H(z, v) at fixed v: U's gradient plus KernelMetric.kinetic_gradient equals autograd
    of H (slogdet and vᵀG⁻¹v), at points near and far from the centroids and for v = 0."""
    centroids, factors = random_metric(count=7)
    metric = KernelMetric(centroids, factors, 0.8, 1e-3)
    torch.manual_seed(4)
    z = torch.cat(
        [
            centroids[:3] + 0.3 * torch.randn(3, 3, dtype=torch.float64),
            2 * torch.randn(5, 3, dtype=torch.float64),
        ]
    )
    for v in (torch.randn(8, 3, dtype=torch.float64), torch.zeros(8, 3, dtype=torch.float64)):
        z_leaf = z.clone().requires_grad_(True)
        energy = riemannian_hamiltonian(quadratic_potential, metric, z_leaf, v).sum()
        (by_autograd,) = torch.autograd.grad(energy, z_leaf)
        closed_form = quadratic_potential_gradient(z) + metric.kinetic_gradient(z, v)
        torch.testing.assert_close(closed_form, by_autograd, rtol=1e-9, atol=1e-10)
        assert by_autograd.abs().max() > 1e-2


@pytest.mark.parametrize("iterations", [3, 12])
def test_generalised_leapfrog_fixed_point_converges(iterations):
    """The residuals of both implicit equations shrink with the iterations: below 1e-4 after 3
    and below 1e-10 after 12 (float64, a step of 0.1 on a curved metric)."""
    metric = KernelMetric(*random_metric(), 0.8, 1e-3)
    torch.manual_seed(1)
    point = PhasePoint(
        torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    )
    step = generalised_leapfrog(
        point,
        torch.tensor(0.1, dtype=torch.float64),
        quadratic_potential_gradient,
        metric,
        iterations,
    )
    tolerance = 1e-4 if iterations == 3 else 1e-10
    assert step.momentum_residual.item() < tolerance
    assert step.position_residual.item() < tolerance
    assert not torch.allclose(step.point.z, point.z)
    torch.testing.assert_close(
        step.end_potential_gradient, quadratic_potential_gradient(step.point.z)
    )


def test_converged_generalised_leapfrog_preserves_volume_and_is_reversible():
    """With the implicit equations solved (30 iterations), the step is symplectic: log |det J|
    = 0 (J by central differences in float64; autograd through 30 nested fixed-point
    iterations costs exponentially many passes) and a step from (z', −v') returns to (z, −v)."""
    metric = KernelMetric(*random_metric(), 0.8, 1e-3)

    def step(phase):
        end = generalised_leapfrog(
            PhasePoint(phase[..., :3], phase[..., 3:]),
            torch.tensor(0.1, dtype=torch.float64),
            quadratic_potential_gradient,
            metric,
            30,
        ).point
        return torch.cat([end.z, end.rho], -1)

    torch.manual_seed(2)
    phase = torch.randn(6, dtype=torch.float64)
    offsets = 1e-5 * torch.eye(6, dtype=torch.float64)
    jacobian = ((step(phase + offsets) - step(phase - offsets)) / 2e-5).T
    assert torch.linalg.slogdet(jacobian).logabsdet.item() == pytest.approx(0.0, abs=1e-7)
    assert not torch.allclose(jacobian, torch.eye(6, dtype=torch.float64), atol=1e-2)
    end = step(phase)
    back = step(torch.cat([end[:3], -end[3:]]))
    torch.testing.assert_close(back, torch.cat([phase[:3], -phase[3:]]), rtol=0, atol=1e-9)


def test_training_stores_centroids_and_evaluation_uses_them():
    model, x = small_rhvae(num_leapfrog_steps=1, fixed_point_iterations=2)
    samples = model.sample_latents(x, None, 2)
    samples.log_weights.mean().backward()
    assert model.metric_network.diagonal.weight.grad.abs().sum() > 0
    assert model.log_step_size.grad.abs().sum() > 0
    assert int(model.num_stored) == 6
    torch.testing.assert_close(model.stored_centroids[:6], model.encode(x).mean.detach())
    model.sample_latents(x, None, 2)  # 12 centroids into a ring of 8: the newest 8 are kept
    assert int(model.num_stored) == 8
    assert int(model.store_cursor) == 4
    model.eval()
    stored = model.stored_centroids.clone()
    with torch.inference_mode():
        log_weights = model.sample_latents(x, None, 3).log_weights
    assert log_weights.shape == (3, 6)
    assert bool(torch.isfinite(log_weights).all())
    assert torch.equal(model.stored_centroids, stored)  # evaluation stores nothing


def test_zero_steps_weight_is_the_vae_weight():
    model, x = small_rhvae(num_leapfrog_steps=0)
    torch.manual_seed(1)
    samples = model.sample_latents(x, None, 4)
    expected = samples.log_likelihood + samples.log_prior - samples.posterior.log_prob(samples.z)
    torch.testing.assert_close(samples.log_weights, expected)


def test_manifold_sampler_is_repeatable_and_leaves_the_global_rng_alone():
    model, x = small_rhvae(
        num_leapfrog_steps=1,
        fixed_point_iterations=1,
        sampler_chain_steps=4,
        sampler_leapfrog_steps=3,
    )
    model.sample_latents(x, None, 1)
    model.eval()
    state = torch.get_rng_state()
    first = model.manifold_samples(5, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, model.manifold_samples(5, torch.Generator().manual_seed(0)))
    assert 0.0 <= model.last_acceptance_rate <= 1.0
    pictures = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert pictures.shape == (5, *SHAPE)
    assert bool(((pictures >= 0) & (pictures <= 1)).all())


# -- real MNIST (slow) -------------------------------------------------------------------------
SMALL_MODEL = [
    "model=rhvae",
    "model.latent_dim=4",
    "model.net.hidden_dims=[64]",
    "model.metric_hidden_dims=[32]",
    "model.num_centroids=100",
    "model.sampler_chain_steps=5",
    # one step of one iteration keeps the slow suite short (a step costs one ∇U per leapfrog)
    "model.num_leapfrog_steps=1",
    "model.fixed_point_iterations=1",
]


@pytest.mark.slow
def test_short_mnist_run_improves_the_bound(mnist_data_dir, tmp_path):
    training_raises_the_validation_elbo(
        SMALL_MODEL, mnist_data_dir, tmp_path, train_batches=100, val_batches=1
    )


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    """2 + 2 epochs from last.ckpt end where 4 straight epochs do (the stored centroids are
    buffers: checkpointed with the model)."""
    resume_matches_straight_run(
        SMALL_MODEL,
        mnist_data_dir,
        tmp_path,
        base=[*DETERMINISTIC, "trainer.limit_train_batches=5", "trainer.limit_val_batches=1"],
    )
