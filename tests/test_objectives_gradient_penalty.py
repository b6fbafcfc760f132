"""The squared input-gradient norm (RAE-GP's decoder penalty, VAE-GAN's R1) against the hand
computation for a sigmoid layer."""

from __future__ import annotations

import torch

from vaelab.objectives.gradient_penalty import squared_input_gradient_norm


def sigmoid_layer() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 3, generator=generator, requires_grad=True)
    bias = torch.randn(5, generator=generator)
    return weight, bias


def hand_squared_norm(weight: torch.Tensor, bias: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """∇_u Σ_j σ(W u + b)_j = Wᵀ σ'(W u + b), σ' = σ(1 − σ), per row of u."""
    s = torch.sigmoid(u @ weight.T + bias)
    return ((s * (1 - s)) @ weight).pow(2).sum(dim=1)


def test_the_penalty_is_the_hand_computed_gradient_norm_and_trains_the_layer():
    weight, bias = sigmoid_layer()
    u = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    penalty = squared_input_gradient_norm(lambda v: torch.sigmoid(v @ weight.T + bias), u)
    expected = hand_squared_norm(weight, bias, u)
    torch.testing.assert_close(penalty, expected.detach())
    (gradient,) = torch.autograd.grad(penalty.sum(), weight)
    (hand_gradient,) = torch.autograd.grad(expected.sum(), weight)
    torch.testing.assert_close(gradient, hand_gradient)


def test_under_inference_mode_it_gives_the_same_numbers_detached():
    weight, bias = sigmoid_layer()
    u = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        frozen_u = u.clone()
        penalty = squared_input_gradient_norm(
            lambda v: torch.sigmoid(v @ weight.T + bias), frozen_u
        )
    assert not penalty.requires_grad
    torch.testing.assert_close(penalty, hand_squared_norm(weight, bias, u).detach())
