"""The module's training regimes: which one a model and objective get, what each declares,
and the split every objective call is told."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from tests.linear_factor_model import LinearFactorModel, binary_patterns, loader, quiet_trainer
from vaelab.builders import build_module
from vaelab.models.interface import LatentVariableModel
from vaelab.module import LatentVariableModule
from vaelab.objectives import ELBO, ObjectiveOutput
from vaelab.regimes import AdversarialRegime, ClosedFormRegime, GradientRegime
from vaelab.schedules.base import Weighting


@pytest.mark.parametrize(
    ("overrides", "regime", "automatic"),
    [
        ((), GradientRegime, True),
        (("model=autoencoder",), GradientRegime, True),
        (("objective=factor_vae",), AdversarialRegime, False),
        (("model=pca",), ClosedFormRegime, False),
        (("model=ppca",), ClosedFormRegime, False),
    ],
)
def test_each_model_and_objective_gets_its_regime(make_config, overrides, regime, automatic):
    module = build_module(make_config("data=digits", *overrides), (1, 8, 8))
    assert type(module.regime) is regime
    assert module.automatic_optimization is automatic


def test_the_regimes_declare_what_the_module_asks_of_them():
    assert GradientRegime.needs_optimizer
    assert AdversarialRegime.needs_optimizer
    assert not ClosedFormRegime.needs_optimizer
    # an unfitted closed-form model has nothing to evaluate in the sanity check
    assert not ClosedFormRegime.evaluates_before_training
    assert GradientRegime.evaluates_before_training


class SplitRecordingELBO(ELBO):
    """The ELBO, noting the split of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.splits: list[str] = []

    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
        split: str = "train",
    ) -> ObjectiveOutput:
        self.splits.append(split)
        return super().forward(model, x, y, weighting, step)


def test_the_split_of_every_batch_reaches_the_objective(tmp_path):
    torch.manual_seed(0)
    objective = SplitRecordingELBO()
    module = LatentVariableModule(LinearFactorModel(), objective, optimizer=torch.optim.Adam)
    trainer = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1)
    train, val = loader(binary_patterns(64), 16), loader(binary_patterns(32, seed=1), 16)
    trainer.fit(module, train, val)
    # the sanity check's batch, 4 training batches, then 2 validation batches
    assert objective.splits == ["val", "train", "train", "train", "train", "val", "val"]
    objective.splits.clear()
    trainer.test(module, loader(binary_patterns(48, seed=2), 16))
    assert objective.splits == ["test"] * 3
