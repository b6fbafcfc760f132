"""The optimiser configs: ``optimizer.fused=true`` builds a fused Adam/AdamW whose update
equals the default (per-tensor) implementation's."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from vaelab.builders import build_module

IMAGE = (1, 28, 28)
BATCH = 16
STEPS = 3


@dataclass
class Trained:
    optimizer: torch.optim.Optimizer
    parameters: list[torch.Tensor]


def _trained_parameters(cfg) -> Trained:
    """The parameters after a few optimiser steps on fixed data, from a fixed init."""
    torch.manual_seed(0)
    module = build_module(cfg, IMAGE)
    optimizer = module.configure_optimizers()
    x = torch.bernoulli(torch.rand(BATCH, *IMAGE, generator=torch.Generator().manual_seed(1)))
    for _ in range(STEPS):
        torch.manual_seed(2)  # the same ε in both runs
        loss = module(x).loss.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Trained(optimizer, [p.detach().clone() for p in module.parameters()])


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_optimizer_matches_the_default_update(make_config, name):
    default = _trained_parameters(make_config(f"optimizer={name}"))
    fused = _trained_parameters(make_config(f"optimizer={name}", "optimizer.fused=true"))
    assert fused.optimizer.defaults["fused"] is True
    assert not default.optimizer.defaults["fused"]
    initial = _init_parameters(make_config())
    assert any(not torch.equal(p, q) for p, q in zip(fused.parameters, initial, strict=True))
    for p, q in zip(fused.parameters, default.parameters, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def _init_parameters(cfg) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [p.detach().clone() for p in build_module(cfg, IMAGE).parameters()]
