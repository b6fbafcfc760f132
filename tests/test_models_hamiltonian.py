"""The Hamiltonian VAE (models/hamiltonian.py): K = 0 is the VAE; on the linear-Gaussian model
its extended-space ELBO equals an independent closed form, stays below log p(x) and tightens
with K at optimised step sizes; the leapfrog map preserves volume and is reversible; the
ELBO engine takes the Monte-Carlo KL; a short MNIST run improves and resumes exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import DETERMINISTIC
from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_raises_the_validation_elbo,
)
from tests.linear_gaussian import (
    AffineDecoder,
    FixedGaussianEncoder,
    X,
    given_networks,
    log_evidence,
)
from vaelab.errors import VaelabError
from vaelab.likelihoods import BernoulliLikelihood, GaussianLikelihood
from vaelab.models.hamiltonian import HamiltonianVAE, PhasePoint, leapfrog, quadratic_tempering
from vaelab.models.interface import MissingCapability
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO
from vaelab.objectives.beta_tcvae import BetaTCVAE
from vaelab.posteriors import DiagonalGaussianPosterior
from vaelab.schedules import ConstantBeta

MU, LOG_VAR = 0.3, -0.5  # q(z₀|x) = N(0.3, e^{−1/2}), far from the posterior N(0.75, 1/2)
NUM_COPIES = 4_000


def linear_gaussian_hvae(
    num_steps: int, step_size: float, beta_zero: float | None
) -> HamiltonianVAE:
    """p(z) = N(0, 1), p(x|z) = N(z, 1); ``beta_zero`` None: no tempering."""
    model = HamiltonianVAE(
        given_networks(FixedGaussianEncoder(MU, LOG_VAR), AffineDecoder()),
        latent_dim=1,
        input_shape=(1, 1, 1),
        posterior=DiagonalGaussianPosterior("log_var"),
        likelihood=GaussianLikelihood("fixed", scale=1.0),
        num_leapfrog_steps=num_steps,
        step_size=step_size,
        tempering="none" if beta_zero is None else "quadratic",
        initial_inverse_temperature=0.5 if beta_zero is None else beta_zero,
    )
    model.double()
    return model


def closed_form_elbo(num_steps: int, step_size: float, beta_zero: float | None) -> float:
    """E[log w] computed independently: on U(z) = z² − xz + const every leapfrog step and the
    tempering are affine maps of (z, v), so (z_K, v_K) is Gaussian with a mean and covariance
    pushed through 2 × 2 matrices, and every term of log w is a Gaussian expectation."""
    mean = np.array([MU, 0.0])
    beta = 1.0 if beta_zero is None or num_steps == 0 else beta_zero
    cov = np.diag([math.exp(LOG_VAR), 1.0 / beta])
    betas = [beta] * (num_steps + 1)
    if beta_zero is not None and num_steps:
        root = 1.0 / math.sqrt(beta_zero)
        betas = [((1 - root) * (k / num_steps) ** 2 + root) ** -2 for k in range(num_steps + 1)]
    half_kick = np.array([[1.0, 0.0], [-step_size, 1.0]])  # v − ε/2 · 2z (U' = 2z − x)
    drift = np.array([[1.0, step_size], [0.0, 1.0]])
    shift = np.array([0.0, step_size * X / 2])
    for k in range(1, num_steps + 1):
        scale = np.diag([1.0, math.sqrt(betas[k - 1] / betas[k])])
        mean = scale @ (half_kick @ (drift @ (half_kick @ mean + shift)) + shift)
        step = scale @ half_kick @ drift @ half_kick
        cov = step @ cov @ step.T
    (mz, mr), vz, vr = mean, cov[0, 0], cov[1, 1]
    log_joint = -0.5 * ((X - mz) ** 2 + vz) - 0.5 * (mz**2 + vz) - math.log(2 * math.pi)
    log_momentum = -0.5 * math.log(2 * math.pi) - 0.5 * (mr**2 + vr)
    entropy_q = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * LOG_VAR
    entropy_rho = 0.5 * math.log(2 * math.pi * math.e / beta)
    return log_joint + log_momentum + entropy_q + entropy_rho + 0.5 * math.log(beta)


#: (K, ε, β₀ or None) at the optimum of the closed form over a grid (ε ∈ [0.02, 1.5] by 0.02,
#: β₀ ∈ [0.05, 1] by 0.025): the best bound of each K, and one setting far from it
OPTIMISED = [(0, 0.5, None), (1, 0.72, None), (2, 1.0, 0.3)]
ARBITRARY = (3, 0.3, 0.5)


@pytest.mark.parametrize("setting", [*OPTIMISED, ARBITRARY], ids=["K0", "K1", "K2", "K3-off"])
def test_linear_gaussian_bound_equals_the_closed_form(setting):
    model = linear_gaussian_hvae(*setting)
    torch.manual_seed(0)
    x = torch.full((NUM_COPIES, 1, 1, 1), X, dtype=torch.float64)
    with torch.no_grad():
        log_weights = model.sample_latents(x).log_weights
    estimate, stderr = log_weights.mean().item(), log_weights.std().item() / NUM_COPIES**0.5
    assert estimate == pytest.approx(closed_form_elbo(*setting), abs=4 * stderr)


def test_linear_gaussian_bound_stays_below_log_px_and_tightens_with_k():
    bounds = [closed_form_elbo(*setting) for setting in OPTIMISED]
    assert bounds[0] < bounds[1] < bounds[2] < log_evidence(X)
    assert bounds[2] - bounds[0] > 0.03  # 0.037 nats of the 0.21-nat gap closed
    assert closed_form_elbo(*ARBITRARY) < log_evidence(X)


def small_models(num_steps: int) -> tuple[VAE, HamiltonianVAE, torch.Tensor]:
    shape = (1, 4, 4)
    torch.manual_seed(3)
    vae = VAE(lambda **s: mlp(hidden_dims=(8,), **s), 3, shape, likelihood=BernoulliLikelihood())
    torch.manual_seed(3)
    hvae = HamiltonianVAE(
        lambda **s: mlp(hidden_dims=(8,), **s),
        3,
        shape,
        likelihood=BernoulliLikelihood(),
        num_leapfrog_steps=num_steps,
        step_size=0.1,
    )
    x = torch.bernoulli(torch.full((6, *shape), 0.4))
    return vae, hvae, x


def test_zero_steps_is_the_vae_elbo():
    vae, hvae, x = small_models(0)
    torch.manual_seed(1)
    expected = vae.sample_latents(x, None, 4).log_weights
    torch.manual_seed(1)
    assert torch.equal(hvae.sample_latents(x, None, 4).log_weights, expected)
    assert hvae.latent_structure.encoded_posterior


def test_leapfrog_preserves_volume_and_is_reversible():
    """On a non-quadratic potential (the small network's −log p(x, z)): log |det J| = 0 by
    autograd's Jacobian of (z, v) ↦ (z', v'), and a step from (z', −v') returns to (z, −v)."""
    _, hvae, x = small_models(1)
    hvae.double()
    x = x[:1].double()
    gradient = hvae.potential_gradient(x, None, create_graph=True)
    step_size = torch.tensor([0.3, 0.2, 0.5], dtype=torch.float64)

    def step(phase):
        end = leapfrog(PhasePoint(phase[:3], phase[3:]), step_size, gradient)
        return torch.cat([end.z, end.rho])

    torch.manual_seed(2)
    phase = torch.randn(6, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(step, phase)
    assert torch.linalg.slogdet(jacobian).logabsdet.item() == pytest.approx(0.0, abs=1e-10)
    assert not torch.allclose(jacobian, torch.eye(6, dtype=torch.float64))
    end = step(phase).detach()
    back = step(torch.cat([end[:3], -end[3:]])).detach()
    torch.testing.assert_close(back, torch.cat([phase[:3], -phase[3:]]), rtol=0, atol=1e-12)


def test_quadratic_tempering_ends_at_one_and_increases():
    betas = torch.stack(quadratic_tempering(torch.tensor(0.3), 4))
    assert betas[0].item() == pytest.approx(0.3)
    assert betas[-1].item() == pytest.approx(1.0)
    assert bool((betas.diff() > 0).all())


def test_gradients_reach_step_size_and_temperature_and_evaluation_works_in_inference_mode():
    _, hvae, x = small_models(2)
    samples = hvae.sample_latents(x, None, 3)
    samples.log_weights.mean().backward()
    assert hvae.log_step_size.grad.abs().sum() > 0
    assert hvae.raw_root_inverse_temperature.grad.abs() > 0
    with torch.inference_mode():
        log_weights = hvae.sample_latents(x, None, 3).log_weights
    assert log_weights.shape == (3, 6)
    assert bool(torch.isfinite(log_weights).all())


def test_elbo_takes_the_monte_carlo_kl_and_q_reading_objectives_refuse():
    _, hvae, x = small_models(2)
    elbo = ELBO(kl="auto")
    elbo.setup(hvae, ConstantBeta(1.0), {})
    assert elbo.resolved_choices()["kl_estimator"] == "monte_carlo"
    torch.manual_seed(4)
    out = elbo(hvae, x, None, ConstantBeta(1.0), 0)
    torch.manual_seed(4)
    samples = hvae.sample_latents(x)
    torch.testing.assert_close(out.bound, samples.log_weights)
    with pytest.raises(VaelabError, match=r"objective\.kl=monte_carlo"):
        ELBO(kl="analytic").setup(hvae, ConstantBeta(1.0), {})
    with pytest.raises(VaelabError, match="moves z after"):
        BetaTCVAE().setup(hvae, ConstantBeta(1.0), {"num_train": 100})
    with pytest.raises(MissingCapability, match="leapfrog"):
        hvae.log_posterior_stopped(samples, x)


def test_bad_settings_raise_one_clear_error():
    with pytest.raises(VaelabError, match=r"model\.initial_inverse_temperature"):
        HamiltonianVAE(
            lambda **s: mlp(hidden_dims=(8,), **s), 3, (1, 4, 4), initial_inverse_temperature=1.5
        )
    with pytest.raises(VaelabError, match=r"model\.num_leapfrog_steps"):
        HamiltonianVAE(lambda **s: mlp(hidden_dims=(8,), **s), 3, (1, 4, 4), num_leapfrog_steps=-1)


# -- real MNIST (slow) -------------------------------------------------------------------------
SMALL_MODEL = ["model=hvae", "model.latent_dim=8", "model.net.hidden_dims=[128]"]


@pytest.mark.slow
def test_short_mnist_run_improves_the_bound(mnist_data_dir, tmp_path):
    training_raises_the_validation_elbo(
        SMALL_MODEL, mnist_data_dir, tmp_path, train_batches=150, val_batches=2
    )


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    """2 + 2 epochs from last.ckpt end where 4 straight epochs do (ε and β₀ are parameters:
    checkpointed with their optimiser state)."""
    resume_matches_straight_run(SMALL_MODEL, mnist_data_dir, tmp_path, base=DETERMINISTIC)
