"""vaelab.optim.configure: the optimiser and the epoch-wise LR scheduler a module returns;
lr_scheduler=burda (torch's MultiStepLR) gives Burda et al.'s rates, checked against the formula
written out here (it replaced vaelab's own scheduler)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_config
from vaelab.builders import build_module

# -- lr_scheduler=burda: torch's MultiStepLR ----------------------------------------------------
BURDA_LR = 1e-3
BURDA_STAGES = 8
BURDA_EPOCHS = sum(3**i for i in range(BURDA_STAGES))


def burda_rate(epoch: int) -> float:
    """Burda et al. (2015, §5): 3^i epochs at lr₀·10^(−i/7), i = 0 … 7; the last rate is kept."""
    stage, stage_end = 0, 1
    while epoch >= stage_end and stage < BURDA_STAGES - 1:
        stage += 1
        stage_end += 3**stage
    return BURDA_LR * 10 ** (-stage / 7)


def test_burda_rate_formula_has_the_papers_stage_lengths():
    rates = [burda_rate(e) for e in range(BURDA_EPOCHS + 10)]
    lengths = [rates.count(BURDA_LR * 10 ** (-i / 7)) for i in range(BURDA_STAGES)]
    assert lengths[:-1] == [3**i for i in range(BURDA_STAGES - 1)]
    assert lengths[-1] == 3 ** (BURDA_STAGES - 1) + 10  # the last rate is kept after 3280
    assert BURDA_EPOCHS == 3280
    assert rates[-1] == pytest.approx(BURDA_LR / 10, rel=1e-12)


def test_burda_yaml_gives_the_papers_rate_every_epoch(tmp_path):
    cfg = compose_config(
        ["lr_scheduler=burda", f"optimizer.lr={BURDA_LR}", "optimizer=adam"], tmp_path
    )
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = instantiate(cfg.optimizer)(params=[parameter])
    scheduler = instantiate(cfg.lr_scheduler)(optimizer=optimizer)
    rates = []
    for _ in range(BURDA_EPOCHS + 5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()  # once per epoch, as optimizer_config's interval "epoch" steps it
    expected = [burda_rate(e) for e in range(len(rates))]
    assert rates == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scheduler", ["none", "step", "cosine", "exponential", "burda"])
def test_lr_scheduler_is_the_configured_class_stepped_once_per_epoch(tmp_path, scheduler):
    """configure_optimizers returns the optimiser alone, or with the lr_scheduler config's class
    bound to it and stepped per epoch (torch's own arithmetic is not re-tested here)."""
    cfg = compose_config([f"lr_scheduler={scheduler}", "trainer.max_epochs=50"], tmp_path)
    configured = build_module(cfg, (1, 28, 28)).configure_optimizers()
    if scheduler == "none":
        assert isinstance(configured, torch.optim.Adam)
        return
    built = configured["lr_scheduler"]["scheduler"]
    assert configured["lr_scheduler"]["interval"] == "epoch"
    assert f"{type(built).__module__}.{type(built).__name__}" == cfg.lr_scheduler._target_
    assert built.optimizer is configured["optimizer"]
    if scheduler == "cosine":
        assert built.T_max == cfg.trainer.max_epochs == 50
