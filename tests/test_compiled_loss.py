"""vaelab.compiled_loss: ``module.compile=true`` compiles the whole training loss, with
torch.distributions' checks off, and says once whether it compiled in one graph."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from vaelab.builders import build_module
from vaelab.compiled_loss import CompiledLoss, distributions_unvalidated

DIGITS_SHAPE = (1, 8, 8)


def test_distribution_checks_are_off_inside_and_restored_after():
    before = torch.distributions.Distribution._validate_args
    with distributions_unvalidated():
        assert Normal(0.0, -1.0).scale.item() == -1.0  # a negative scale passes unchecked
    assert torch.distributions.Distribution._validate_args == before
    if before:
        with pytest.raises(ValueError, match="scale"):
            Normal(0.0, -1.0)


def test_a_loss_without_graph_breaks_is_said_to_compile_in_one_graph():
    loss = CompiledLoss(lambda x: (x * 2).sum(-1), "the doubled sum", backend="eager")
    x = torch.arange(6.0).reshape(2, 3)
    torch.testing.assert_close(loss(x), torch.tensor([6.0, 24.0]))
    assert not loss.breaks
    assert loss.summary() == "vaelab: module.compile: the doubled sum compiles in one graph"


def test_a_graph_break_is_counted_and_named_once():
    def with_a_break(x):
        y = x + 1
        torch._dynamo.graph_break()
        return y * 2

    loss = CompiledLoss(with_a_break, "the broken loss", backend="eager")
    torch.testing.assert_close(loss(torch.ones(3)), torch.full((3,), 4.0))
    assert sum(loss.breaks.values()) == 1
    first = loss.summary()
    assert "the broken loss does not compile in one graph (1 graph breaks: " in first
    assert "module.compile=false" in first
    loss(torch.ones(3))  # later calls do not count again
    assert loss.summary() == first


def digits_module(make_config, *overrides: str):
    torch.manual_seed(0)
    return build_module(make_config("data=digits", *overrides), DIGITS_SHAPE, {"num_train": 100})


@pytest.mark.slow
def test_the_modules_traced_training_loss_equals_its_eager_loss(make_config):
    """The whole ELBO (networks, reparameterised sample, Bernoulli likelihood, KL) traced
    into one graph, with the same draws of z for the same seed. Slow: dynamo traces for
    seconds on a loaded 2-core CPU."""
    module = digits_module(make_config)
    x = torch.rand(5, *DIGITS_SHAPE).round()
    torch.manual_seed(1)
    eager = module(x, None, split="train")
    module.compiled_loss = CompiledLoss(module._training_objective, "the ELBO", backend="eager")
    torch.manual_seed(1)
    traced = module(x, None, split="train")
    assert not module.compiled_loss.breaks
    torch.testing.assert_close(traced.loss, eager.loss)
    torch.testing.assert_close(traced.terms["kl"], eager.terms["kl"])


@pytest.mark.slow
def test_inductor_compiled_loss_and_gradients_equal_eager_ones(make_config):
    """Inductor's code for the benchmark's model (784-400-20 MLP, leaky ReLU 0.2, Bernoulli):
    the same loss and gradients as eager up to float32 rounding, z drawn by torch's generator
    (``fallback_random``). Slow: Inductor compiles for tens of seconds on a CPU."""
    overrides = ("model.latent_dim=20", "model.net.hidden_dims=[400]", "data=mnist")
    torch.manual_seed(0)
    module = build_module(make_config(*overrides), (1, 28, 28), {"num_train": 100})
    x = torch.rand(64, 1, 28, 28).round()
    results = {}
    for compiled in (False, True):
        if compiled:
            module.compiled_loss = CompiledLoss(module._training_objective, "the ELBO")
        module.zero_grad()
        torch.manual_seed(1)
        loss = module(x, None, split="train").loss
        loss.mean().backward()
        results[compiled] = loss.detach(), [p.grad.clone() for p in module.parameters()]
    assert not module.compiled_loss.breaks
    torch.testing.assert_close(results[True][0], results[False][0], rtol=1e-5, atol=1e-3)
    for compiled_grad, eager_grad in zip(results[True][1], results[False][1], strict=True):
        torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-3, atol=1e-4)
