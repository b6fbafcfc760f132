"""Configs and readers that now use a library class instead of vaelab's own code, checked
against what the replaced code did (formulas written out here, not the deleted code)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_config
from vaelab.callbacks.throughput import IMAGES_SEEN, logged_rate, logged_scalars
from vaelab.train import train

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
    assert BURDA_EPOCHS == 3280 and rates[-1] == pytest.approx(BURDA_LR / 10, rel=1e-12)


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


# -- +callbacks.throughput: Lightning's ThroughputMonitor --------------------------------------
DIGITS_TRAIN_IMAGES = 1797 - 180 - 180  # conf/data/digits.yaml: val_size and test_size 180
DIGITS_BATCH = 100


def test_throughput_callback_counts_images_and_logs_a_rate(make_config):
    cfg = make_config(
        "data=digits",
        f"data.batch_size={DIGITS_BATCH}",
        "trainer.max_epochs=1",
        "test=false",
        "callbacks.image_logger=null",
        "trainer.log_every_n_steps=5",
        "+callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput",
        "+callbacks.throughput.window_size=4",
    )
    train(cfg)
    run_dir = cfg.paths.output_dir
    # 15 batches (the last of 37 images), logged at steps 5, 10 and 15: images are counted,
    # not (x, y) pairs
    seen = logged_scalars(run_dir, IMAGES_SEEN)
    assert seen == [5 * DIGITS_BATCH, 10 * DIGITS_BATCH, DIGITS_TRAIN_IMAGES]
    rate = logged_rate(run_dir)
    assert rate is not None and rate > 0
