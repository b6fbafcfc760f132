"""VAEs with categorical latents (vaelab/models/discrete.py): relaxed draws in training,
one-hot draws scored exactly in evaluation, so the IW-NLL is a bound on the discrete model's
log p(x) — checked against log p(x) summed over all 3² codes of a 2 × 3 latent — the step
reaching the temperature through the module, and (slow) real MNIST runs and exact resume."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch
from torch.distributions import kl_divergence

from tests.conftest import DETERMINISTIC, FAST, compose_config
from tests.latent_family_runs import resume_matches_straight_run
from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.models.discrete import DiscreteVAE
from vaelab.models.interface import CategoricalBlock, MissingCapability
from vaelab.module import LatentVariableModule
from vaelab.nets.mlp import mlp
from vaelab.objectives.elbo import ELBO
from vaelab.posteriors.categorical import CategoricalPosterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.priors.categorical import CategoricalPrior
from vaelab.schedules.constant import ConstantBeta
from vaelab.train import train

SHAPE = (1, 4, 4)


def _model(num_variables=2, num_categories=3, continuous_dim=0, learned=False, seed=0):
    torch.manual_seed(seed)
    return DiscreteVAE(
        net=functools.partial(mlp, hidden_dims=[16]),
        num_variables=num_variables,
        input_shape=SHAPE,
        posterior=CategoricalPosterior(num_categories, continuous_dim, temperature=0.5),
        prior=CategoricalPrior(learned=learned),
    )


def _images(count: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((count, *SHAPE), 0.3), generator=generator)


def _exact_log_likelihood(model: DiscreteVAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log Σ_c p(x|c) p(c), over every code of N variables of K categories."""
    n, k = model.num_variables, model.posterior.num_categories
    codes = torch.stack(
        [
            torch.nn.functional.one_hot(torch.tensor(choice), k).flatten().float()
            for choice in itertools.product(range(k), repeat=n)
        ]
    )  # [K^N, N·K]
    log_prior = model.prior.distribution().log_prob(codes)  # [K^N]
    log_likelihood = model.decode(codes.unsqueeze(1).expand(-1, len(x), -1)).log_prob(x)
    return torch.logsumexp(log_likelihood + log_prior.unsqueeze(1), dim=0)


def test_iw_nll_converges_to_log_p_x_summed_over_all_codes_and_lies_below_the_elbo():
    """2 variables × 3 categories: 9 codes. With one-hot samples and the exact categorical
    densities the weights w = p(x, c)/q(c|x) average to p(x) (the IW estimate is consistent),
    within 5 standard errors of their own spread, and −ELBO lies above −log p(x)."""
    model = _model(learned=True).eval()
    with torch.no_grad():
        model.prior.logits.copy_(torch.randn(2, 3, generator=torch.Generator().manual_seed(2)))
    x = _images(8)
    num_samples = 2000
    with torch.no_grad():
        exact = _exact_log_likelihood(model, x)
        torch.manual_seed(0)
        estimate = importance_weighted_log_likelihood(model, x, num_samples, chunk_size=1000)
        torch.manual_seed(0)
        log_w = model.sample_latents(x, None, num_samples).log_weights_in(torch.float64)
        elbo = ELBO()(model, x, None, ConstantBeta(1.0), 0).bound  # analytic categorical KL
    relative_error = (log_w - exact).exp().std(0) / math.sqrt(num_samples)
    assert ((estimate.log_likelihood - exact).abs() <= 5 * relative_error + 1e-9).all()
    assert relative_error.max() < 0.05  # the check has teeth
    assert (-exact <= -elbo + 1e-9).all()
    assert (-elbo + exact).mean() > 0.01  # a real gap: q(c|x) is not the exact posterior


def test_training_draws_are_relaxed_and_evaluation_draws_are_one_hot_scored_exactly():
    model = _model()
    x = _images(4)
    model.train()
    relaxed = model.sample_latents(x, None, 3)
    assert not torch.all((relaxed.z == 0) | (relaxed.z == 1))
    q = relaxed.posterior
    soft_log = torch.log(relaxed.z.view(3, 4, 2, 3))
    assert torch.allclose(
        relaxed.log_posterior, q.log_density(soft_log.flatten(-2), relaxed=True), atol=1e-6
    )
    model.eval()
    with torch.no_grad():
        hard = model.sample_latents(x, None, 5)
    assert torch.all((hard.z == 0) | (hard.z == 1))
    assert torch.equal(hard.z.view(5, 4, 2, 3).sum(-1), torch.ones(5, 4, 2, dtype=hard.z.dtype))
    expected_q = (hard.z.view(5, 4, 2, 3) * hard.posterior.logits).sum((-1, -2))
    assert torch.allclose(hard.log_posterior, expected_q)
    assert torch.allclose(hard.log_prior, torch.full_like(hard.log_prior, 2 * -math.log(3)))


def test_the_monte_carlo_kl_of_one_hot_draws_averages_to_the_categorical_kl():
    model = _model(num_variables=3, num_categories=4).eval()
    x = _images(2)
    torch.manual_seed(0)
    with torch.no_grad():
        samples = model.sample_latents(x, None, 5000)
        analytic = kl_divergence(samples.posterior, model.prior.distribution())
    monte_carlo = (samples.log_posterior - samples.log_prior).mean(0)
    assert torch.allclose(monte_carlo, analytic, atol=0.06)


def test_the_relaxed_monte_carlo_kl_scores_both_concrete_densities_at_the_posterior_temperature():
    """Maddison et al. 2017, §C: log q_τ(y|x) − log p_τ(y) at the relaxed draw y."""
    model = _model()
    x = _images(3)
    model.train()
    model.at_step(0)
    samples = model.sample_latents(x, None, 4)
    log_y = torch.log(samples.z)
    uniform = type(samples.posterior)(torch.zeros(2, 3))
    expected = uniform.log_density(log_y, relaxed=True, temperature=0.5)
    assert torch.allclose(samples.log_prior, expected, atol=1e-6)
    objective = ELBO(kl="monte_carlo")
    objective.setup(model, ConstantBeta(1.0), {})
    assert objective.kl_estimator == "monte_carlo"


def test_a_learned_prior_trains_and_a_uniform_one_has_nothing_to_learn():
    learned, uniform = _model(learned=True), _model()
    assert [name for name, _ in learned.prior.named_parameters()] == ["logits"]
    assert list(uniform.prior.parameters()) == []
    assert "prior.logits" not in uniform.state_dict()
    learned.train()
    loss = ELBO()
    loss.setup(learned, ConstantBeta(1.0), {})
    loss(learned, _images(4), None, ConstantBeta(1.0), 0).loss.mean().backward()
    assert learned.prior.logits.grad.abs().sum() > 0


def test_the_module_tells_the_posterior_the_training_step_and_logs_its_temperature():
    torch.manual_seed(0)
    model = DiscreteVAE(
        net=functools.partial(mlp, hidden_dims=[16]),
        num_variables=4,
        input_shape=SHAPE,
        posterior=CategoricalPosterior(10, anneal_rate=3e-5, anneal_every=1),
    )
    module = LatentVariableModule(model, optimizer=functools.partial(torch.optim.Adam))
    assert "temperature" in module.logged_metric_names()
    posterior = model.posterior
    assert model.at_step(10_000) == {"temperature": pytest.approx(math.exp(-0.3))}
    assert posterior.temperature == pytest.approx(math.exp(-0.3))
    module(torch.rand(2, *SHAPE))  # the module's step (0, no trainer) reaches the posterior
    assert posterior.temperature == 1.0
    structure = model.latent_structure
    assert structure.categorical_blocks[:2] == (CategoricalBlock(0, 10), CategoricalBlock(10, 10))
    assert len(structure.categorical_blocks) == 4
    assert structure.continuous_dims == []


def test_model_joint_vae_composes_a_gaussian_block_first_and_the_capacity_objective(tmp_path):
    cfg = compose_config([*FAST, "data=digits", "model=joint_vae"], tmp_path / "run")
    module = build_module(cfg, (1, 8, 8))
    model = module.model
    assert type(module.objective).__name__ == "JointCapacity"
    assert model.latent_dim == 20
    assert model.latent_structure.categorical_blocks == (CategoricalBlock(10, 10),)
    assert model.latent_structure.continuous_dims == list(range(10))


def test_parts_that_are_not_categorical_and_stl_are_refused():
    with pytest.raises(VaelabError, match="is not categorical"):
        DiscreteVAE(
            net=functools.partial(mlp, hidden_dims=[16]),
            num_variables=2,
            input_shape=SHAPE,
            posterior=DiagonalGaussianPosterior(),
        )
    model = _model()
    with pytest.raises(MissingCapability, match="stl"):
        model.log_posterior_stopped(model.sample_latents(_images(2)), _images(2))


# -- real MNIST (slow) -------------------------------------------------------------------------
SMALL = ["model.net.hidden_dims=[128]", "model.num_variables=8"]
#: tests/conftest.py's reproducible short run without its β warm-up (JointVAE's γ replaces β)
REPRODUCIBLE = [o for o in DETERMINISTIC if not o.startswith("beta")]
OPTIONS = {
    "gumbel_vae": ["model=gumbel_vae", "model.posterior.anneal_every=10"],
    "gumbel_vae_st": ["model=gumbel_vae", "model.posterior.straight_through=true"],
    "joint_vae": [
        "model=joint_vae",
        "beta=constant",
        "objective.capacity_continuous_steps=100",
        "objective.capacity_discrete_steps=100",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("option", OPTIONS.values(), ids=OPTIONS.keys())
def test_short_mnist_run_improves_and_iw_nll_is_below_the_negative_elbo(
    option, mnist_data_dir, tmp_path
):
    """Four short epochs on binarised MNIST: the discrete model's validation ELBO improves
    (epoch 1 → 4), and the IW-NLL of one-hot samples (k = 64) lies below the test −ELBO."""
    from tests.conftest import eval_config
    from vaelab.eval import evaluate

    common = [
        *REPRODUCIBLE,
        f"paths.data_dir={mnist_data_dir}",
        "callbacks.encoding_snapshot=null",
        *SMALL,
        *option,
    ]
    first = train(compose_config([*common, "trainer.max_epochs=1"], tmp_path / "one"))
    four = train(compose_config([*common, "trainer.max_epochs=4"], tmp_path / "four"))
    assert four["val/elbo"] > first["val/elbo"] + 5
    metrics = evaluate(eval_config(tmp_path / "four", mnist_data_dir, "eval.figures=true"))
    assert metrics["iw_nll"] <= metrics["neg_elbo"]
    assert "categorical latents" in metrics["notes"]["iw_nll"]
    assert (tmp_path / "four" / "eval" / "discrete_traversals.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("option", OPTIONS.values(), ids=OPTIONS.keys())
def test_resume_after_two_epochs_reproduces_four_straight_epochs(option, mnist_data_dir, tmp_path):
    """2 + 2 epochs from last.ckpt end where 4 straight epochs do: the temperature is a
    function of the restored global step, so the relaxation resumes where it was."""
    resume_matches_straight_run([*SMALL, *option], mnist_data_dir, tmp_path, base=REPRODUCIBLE)
