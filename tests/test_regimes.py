"""The module's training regimes: which one a model and objective get, what each declares,
and the split every objective call is told."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import Tensor

from tests.linear_factor_model import LinearFactorModel, binary_patterns, loader, quiet_trainer
from vaelab.builders import build_module
from vaelab.models.interface import LatentVariableModel
from vaelab.module import LatentVariableModule
from vaelab.objectives import ELBO, ObjectiveOutput
from vaelab.objectives.adversarial_autoencoder import AdversarialAutoencoder
from vaelab.objectives.factor_vae import FactorVAE
from vaelab.objectives.vae_gan import VAEGAN
from vaelab.regimes import AdversarialRegime, ClosedFormRegime, GradientRegime
from vaelab.schedules.base import Weighting


@pytest.mark.parametrize(
    ("overrides", "regime", "automatic"),
    [
        ((), GradientRegime, True),
        (("model=autoencoder",), GradientRegime, True),
        (("objective=factor_vae",), AdversarialRegime, False),
        (("objective=adversarial_autoencoder",), AdversarialRegime, False),
        (("objective=vae_gan",), AdversarialRegime, False),
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


class ParameterSnapshots(L.Callback):
    """All parameters before each optimiser step (the step before it and this group's
    backward lie between two snapshots; a backward changes no parameter), and at the end."""

    def __init__(self) -> None:
        self.snapshots: list[dict[str, Tensor]] = []
        self.stepped: list[set[int]] = []

    @staticmethod
    def _snapshot(module) -> dict[int, Tensor]:
        return {id(p): p.detach().clone() for p in module.parameters()}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ARG002
        self.snapshots.append(self._snapshot(pl_module))
        self.stepped.append({id(p) for group in optimizer.param_groups for p in group["params"]})

    def on_train_end(self, trainer, pl_module) -> None:  # noqa: ARG002
        self.snapshots.append(self._snapshot(pl_module))


@pytest.mark.parametrize(
    ("objective", "groups", "disjoint"),
    [
        (lambda: FactorVAE(discriminator_width=8, discriminator_depth=1), 2, True),
        # the generator phase steps the encoder again, as Makhzani et al.'s second phase does
        (lambda: AdversarialAutoencoder(discriminator_width=8, discriminator_depth=1), 3, False),
        (lambda: VAEGAN(discriminator_width=8, discriminator_depth=1, feature_layer=1), 3, True),
    ],
    ids=["factor_vae", "adversarial_autoencoder", "vae_gan"],
)
def test_each_optimiser_group_steps_only_its_own_parameters(tmp_path, objective, groups, disjoint):
    torch.manual_seed(0)
    module = LatentVariableModule(LinearFactorModel(), objective(), optimizer=torch.optim.Adam)
    recorder = ParameterSnapshots()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1, callbacks=[recorder])
    trainer.fit(module, loader(binary_patterns(16), 16))
    assert len(recorder.stepped) == groups
    owned = [set(stepped) for stepped in recorder.stepped]
    for index, stepped in enumerate(recorder.stepped):
        before, after = recorder.snapshots[index], recorder.snapshots[index + 1]
        moved = {key for key in before if not torch.equal(before[key], after[key])}
        assert moved, f"group {index} moved nothing"
        assert moved <= stepped, f"group {index} moved parameters of another group"
        if disjoint:  # no parameter belongs to two groups
            assert all(not (stepped & other) for other in owned[:index])
