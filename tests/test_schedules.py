"""β schedules and KL penalties: values at chosen steps, penalties and their gradients."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_config
from vaelab.errors import VaelabError
from vaelab.schedules import CapacityPenalty, ConstantBeta, CyclicalBeta, FreeBits, LinearWarmup


def test_constant_beta_every_step_and_penalty():
    schedule = ConstantBeta(4.0)
    assert [schedule.beta(s) for s in (0, 1, 10**6)] == [4.0, 4.0, 4.0]
    kl = torch.tensor([1.0, 3.0])
    torch.testing.assert_close(schedule.penalty(kl, None, 7), torch.tensor([4.0, 12.0]))
    with pytest.raises(ValueError, match=r"beta\.value"):
        ConstantBeta(-1.0)


def test_linear_warmup_start_middle_end_and_after():
    schedule = LinearWarmup(value=2.0, warmup_steps=100)
    assert schedule.beta(0) == 0.0
    assert schedule.beta(25) == pytest.approx(0.5)
    assert schedule.beta(50) == pytest.approx(1.0)
    assert schedule.beta(100) == 2.0
    assert schedule.beta(10_000) == 2.0
    kl = torch.tensor([3.0])
    torch.testing.assert_close(schedule.penalty(kl, None, 50), torch.tensor([3.0]))


def test_cyclical_ramps_holds_and_restarts_at_cycle_boundaries():
    # T = 400 steps, M = 4 cycles of 100 steps, ramp over the first R = 50% of each
    schedule = CyclicalBeta(value=1.0, total_steps=400, num_cycles=4, ramp_fraction=0.5)
    expected = {
        0: 0.0,
        25: 0.5,
        50: 1.0,
        75: 1.0,
        99: 1.0,  # cycle 1
        100: 0.0,
        125: 0.5,
        150: 1.0,  # cycle 2 starts at 0 again
        399: 1.0,
        400: 0.0,
        410: 0.2,
        450: 1.0,
    }  # after T the pattern repeats
    for step, beta in expected.items():
        assert schedule.beta(step) == pytest.approx(beta), step
    scaled = CyclicalBeta(value=3.0, total_steps=90, num_cycles=3, ramp_fraction=1.0)
    assert [scaled.beta(s) for s in (0, 15, 29, 30)] == pytest.approx([0.0, 1.5, 2.9, 0.0])


def test_capacity_target_rises_then_holds_and_penalty_is_gamma_abs_gap():
    schedule = CapacityPenalty(gamma=10.0, capacity_max=20.0, capacity_steps=100)
    assert [schedule.capacity(s) for s in (0, 50, 100, 500)] == [0.0, 10.0, 20.0, 20.0]
    assert schedule.beta(50) == 10.0
    kl = torch.tensor([4.0, 8.0], requires_grad=True)  # batch mean 6 < C(50) = 10
    penalty = schedule.penalty(kl, None, 50)
    torch.testing.assert_close(penalty, torch.tensor([40.0, 40.0]))
    penalty.mean().backward()
    torch.testing.assert_close(kl.grad, torch.tensor([-5.0, -5.0]))  # push the KL up to C
    above = schedule.penalty(torch.tensor([30.0, 34.0]), None, 100)  # mean 32 > C = 20
    torch.testing.assert_close(above, torch.tensor([120.0, 120.0]))


def test_free_bits_floors_each_dimension_batch_mean():
    schedule = FreeBits(free_nats=0.5)
    assert schedule.beta(123) == 1.0
    kl_per_dim = torch.tensor(
        [[0.1, 1.0, 0.2], [0.3, 2.0, 0.2]], requires_grad=True
    )  # means 0.2, 1.5, 0.2
    kl = kl_per_dim.sum(-1)
    penalty = schedule.penalty(kl, kl_per_dim, 0)
    torch.testing.assert_close(penalty, torch.tensor([2.5, 2.5]))  # 0.5 + 1.5 + 0.5
    penalty.mean().backward()
    # only the dimension above λ is pushed down, by 1/B per data point
    torch.testing.assert_close(kl_per_dim.grad, torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]))
    zero = FreeBits(free_nats=0.0).penalty(kl.detach(), kl_per_dim.detach(), 0)
    torch.testing.assert_close(zero, torch.full((2,), kl.detach().mean().item()))


def test_free_bits_without_per_dimension_kl_is_a_clear_error():
    with pytest.raises(VaelabError, match="posterior=diagonal"):
        FreeBits(0.5).penalty(torch.tensor([1.0]), None, 0)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (LinearWarmup, {"warmup_steps": 0}),
        (CyclicalBeta, {"ramp_fraction": 0.0}),
        (CyclicalBeta, {"num_cycles": 0}),
        (CapacityPenalty, {"gamma": -1.0}),
        (CapacityPenalty, {"capacity_steps": 0}),
        (FreeBits, {"free_nats": -0.1}),
    ],
)
def test_bad_schedule_options_raise(cls, kwargs):
    with pytest.raises(ValueError, match="beta"):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("name", "cls", "step", "beta"),
    [
        ("constant", ConstantBeta, 10, 1.0),
        ("linear_warmup", LinearWarmup, 5000, 0.5),
        ("cyclical", CyclicalBeta, 12500, 1.0),
        ("capacity", CapacityPenalty, 0, 1000.0),
        ("free_bits", FreeBits, 0, 1.0),
    ],
)
def test_beta_configs_instantiate(tmp_path, name, cls, step, beta):
    schedule = instantiate(compose_config([f"beta={name}"], tmp_path).beta)
    assert type(schedule) is cls
    assert schedule.beta(step) == pytest.approx(beta)
