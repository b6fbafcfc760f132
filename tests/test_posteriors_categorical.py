"""Categorical latents (vaelab/posteriors/categorical.py): the Concrete density against torch's
RelaxedOneHotCategorical, the relaxation's limit τ → 0, the categorical KL against a hand sum,
straight-through draws and Jang et al.'s temperature schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, RelaxedOneHotCategorical, kl_divergence

from vaelab.errors import VaelabError
from vaelab.posteriors.categorical import (
    CategoricalPosterior,
    DiscreteCode,
    concrete_log_density,
)
from vaelab.posteriors.structure import latent_blocks


def _logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.3, 0.67, 1.0, 2.5])
def test_concrete_log_density_equals_torch_relaxed_one_hot_categorical(temperature):
    logits = _logits(4, 3, 5)
    torch.manual_seed(1)
    code = DiscreteCode(logits, temperature)
    draw = code.draw((6,), relaxed=True)
    soft = draw.z.unflatten(-1, (3, 5))
    expected = RelaxedOneHotCategorical(torch.tensor(temperature), logits=logits).log_prob(soft)
    assert torch.allclose(code.log_density(draw.point, relaxed=True), expected.sum(-1), atol=1e-8)
    # the same closed form, one variable, straight from Maddison et al.'s Definition 1
    alpha, y, k = logits[0, 0].exp(), soft[0, 0, 0], 5
    by_hand = (
        math.log(math.factorial(k - 1))
        + (k - 1) * math.log(temperature)
        + torch.log(alpha * y ** (-temperature - 1)).sum()
        - k * torch.log((alpha * y ** (-temperature)).sum())
    )
    got = concrete_log_density(logits[0, 0], draw.point[0, 0, :5], temperature)
    assert float(got) == pytest.approx(float(by_hand), abs=1e-9)


def test_relaxed_draws_average_to_the_probabilities_as_the_temperature_falls():
    logits = _logits(2, 4, seed=3)
    probs = torch.softmax(logits, -1)
    torch.manual_seed(0)
    draws = 20000
    for temperature in (0.05, 0.01):
        mean = DiscreteCode(logits, temperature).draw((draws,)).z.mean(0).view(2, 4)
        # the draws are all but one-hot: each number's standard error is ≤ sqrt(p(1 − p)/n)
        assert torch.allclose(mean, probs, atol=4 * 0.5 / math.sqrt(draws))
    # at a high temperature they are not (the mean is pulled towards 1/K)
    hot = DiscreteCode(logits, 5.0).draw((draws,)).z.mean(0).view(2, 4)
    assert (hot - probs).abs().max() > 0.05


def test_categorical_kl_equals_the_sum_over_categories_by_hand():
    q_logits, p_logits = _logits(3, 2, 4, seed=1), _logits(2, 4, seed=2)
    q, p = DiscreteCode(q_logits), DiscreteCode(p_logits)
    kl = kl_divergence(q, p)
    for b in range(3):
        by_hand = 0.0
        for n in range(2):
            q_n, p_n = torch.softmax(q_logits[b, n], -1), torch.softmax(p_logits[n], -1)
            by_hand += sum(float(q_n[k] * math.log(q_n[k] / p_n[k])) for k in range(4))
        assert float(kl[b]) == pytest.approx(by_hand, abs=1e-10)


def test_a_joint_code_splits_into_a_gaussian_and_a_categorical_block():
    loc, scale, logits = _logits(3, 2), _logits(3, 2, seed=5).exp(), _logits(3, 1, 4)
    q = DiscreteCode(logits, loc=loc, scale=scale)
    p = DiscreteCode(
        torch.zeros(1, 4, dtype=torch.float64), loc=torch.zeros(2), scale=torch.ones(2)
    )
    blocks = latent_blocks(q)
    assert set(blocks) == {"continuous", "discrete"}
    gaussian = kl_divergence(Normal(loc, scale), Normal(0.0, 1.0)).sum(-1)
    categorical = (torch.softmax(logits, -1) * (torch.log_softmax(logits, -1) + math.log(4))).sum(
        (-1, -2)
    )
    assert torch.allclose(kl_divergence(q, p), gaussian + categorical)
    assert torch.allclose(
        kl_divergence(blocks["continuous"], latent_blocks(p)["continuous"]), gaussian
    )
    # one-hot draws: the Gaussian block's log-density plus log π of the chosen categories
    code = q.sample((5,))
    one_hot = code[..., 2:].view(5, 3, 1, 4)
    assert torch.equal(one_hot.sum(-1), torch.ones(5, 3, 1, dtype=one_hot.dtype))
    expected = Normal(loc, scale).log_prob(code[..., :2]).sum(-1) + (
        one_hot * torch.log_softmax(logits, -1)
    ).sum((-1, -2))
    assert torch.allclose(q.log_prob(code), expected)
    assert float(p.entropy()) == pytest.approx(
        math.log(4) + 2 * 0.5 * math.log(2 * math.pi * math.e)
    )


def test_straight_through_draws_are_one_hot_forward_with_the_relaxed_gradient():
    logits = _logits(2, 3, 4).float().requires_grad_()
    torch.manual_seed(0)
    hard = DiscreteCode(logits, 0.5, straight_through=True).draw(relaxed=True)
    torch.manual_seed(0)
    soft = DiscreteCode(logits, 0.5).draw(relaxed=True)
    one_hot = hard.z.view(2, 3, 4)
    assert torch.equal(one_hot.sum(-1), torch.ones(2, 3))
    assert torch.equal(one_hot.argmax(-1), soft.z.view(2, 3, 4).argmax(-1))
    weights = torch.randn(2, 12)
    (hard_grad,) = torch.autograd.grad((hard.z * weights).sum(), logits)
    (soft_grad,) = torch.autograd.grad((soft.z * weights).sum(), logits)
    assert torch.allclose(hard_grad, soft_grad)  # the same point is scored
    assert torch.equal(hard.point, soft.point)


def test_the_temperature_follows_jang_et_al_exponential_decay():
    posterior = CategoricalPosterior(
        temperature=1.0, temperature_min=0.5, anneal_rate=3e-5, anneal_every=1000
    )
    assert posterior.temperature_at(999) == 1.0
    assert posterior.temperature_at(1000) == pytest.approx(math.exp(-0.03))
    assert posterior.temperature_at(20_500) == pytest.approx(math.exp(-0.6))
    assert posterior.temperature_at(10**6) == 0.5
    assert posterior.at_step(2000) == {"temperature": pytest.approx(math.exp(-0.06))}
    assert posterior.distribution(torch.zeros(1, 20)).temperature == pytest.approx(math.exp(-0.06))
    constant = CategoricalPosterior(temperature=0.67, temperature_min=0.67, anneal_rate=0.0)
    assert constant.temperature_at(10**7) == 0.67
    with pytest.raises(VaelabError, match=r"temperature_min=0\.9 is above"):
        CategoricalPosterior(temperature=0.5, temperature_min=0.9)


def test_the_encoder_output_is_read_as_gaussian_parameters_then_logits():
    posterior = CategoricalPosterior(num_categories=3, continuous_dim=2)
    assert posterior.num_params(8) == 10  # (μ, log σ²) of 2 numbers, logits of 2 × 3
    output = torch.arange(10.0).unsqueeze(0)
    q = posterior.distribution(output)
    assert torch.equal(q.continuous.mean, torch.tensor([[0.0, 1.0]]))
    assert torch.allclose(q.continuous.stddev, torch.exp(0.5 * torch.tensor([[2.0, 3.0]])))
    assert torch.allclose(q.probs, torch.softmax(torch.arange(4.0, 10.0).view(1, 2, 3), -1))
    # the code reconstructions decode: the means and each variable's most probable category
    assert torch.equal(posterior.mean(output), torch.tensor([[0.0, 1.0, 0, 0, 1, 0, 0, 1]]))
    with pytest.raises(VaelabError, match="not 2 continuous ones and whole one-hot vectors"):
        posterior.num_params(7)
    with pytest.raises(VaelabError, match="model=gumbel_vae or model=joint_vae"):
        q.rsample()
