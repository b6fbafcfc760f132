"""How :class:`~vaelab.module.LatentVariableModule` trains a model: one small strategy per
regime, chosen once when the module is built (:func:`choose_regime`), to which the module's
Lightning hooks delegate.

- :class:`GradientRegime`: gradient descent with Lightning's automatic optimisation;
- :class:`AdversarialRegime`: manual optimisation, the model's optimiser and the adversary's
  (FactorVAE's discriminator) stepped in turn;
- :class:`ClosedFormRegime`: a one-pass fit from the training split (PCA, PPCA), no
  optimiser; training stops after the first epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.optim.configure import optimizer_config


class TrainingModule(Protocol):
    """What a regime uses of :class:`vaelab.module.LatentVariableModule` (a LightningModule):
    its model, objective, optimiser settings and training-step helpers (named here, not
    imported: the module imports the regimes)."""

    model: LatentVariableModel
    objective: Objective
    optimizer_factory: Callable[..., Any] | None
    lr_scheduler_factory: Callable[..., Any] | None
    gradient_clip_val: float | None
    gradient_clip_algorithm: str
    trainer: Any

    def __call__(self, x: Tensor, y: Tensor | None, split: str) -> ObjectiveOutput: ...
    def is_logging_step(self, batch_idx: int) -> bool: ...
    def check_finite_loss(self, out: ObjectiveOutput, loss: Tensor, logging_step: bool) -> None: ...
    def log_training_step(self, loss: Tensor, out: ObjectiveOutput, extra: dict) -> None: ...
    def accumulate_training_means(
        self, loss: Tensor, out: ObjectiveOutput, extra: dict, batch_idx: int
    ) -> None: ...
    def optimizers(self) -> Any: ...
    def lr_schedulers(self) -> Any: ...
    def manual_backward(self, loss: Tensor) -> None: ...
    def clip_gradients(self, optimizer: Any, **clipping: Any) -> None: ...


#: manual optimiser steps on a batch: (module, x, y, outputs, loss) → extra values to log
StepOptimizers = Callable[
    [TrainingModule, Tensor, "Tensor | None", ObjectiveOutput, Tensor], dict[str, Tensor]
]


class Regime:
    """The hooks of one training regime; the module owns the model, objective and logging."""

    #: Lightning's ``automatic_optimization`` for this regime
    automatic_optimization: ClassVar[bool] = True
    #: whether the sanity check before training evaluates the model (an unfitted closed-form
    #: model has nothing to evaluate)
    evaluates_before_training: ClassVar[bool] = True
    #: whether the module must be given ``optimizer=``
    needs_optimizer: ClassVar[bool] = False

    def configure_optimizers(self, module: TrainingModule) -> Any:  # noqa: ARG002
        """No optimiser (the default)."""
        return None

    def training_step(
        self, module: TrainingModule, x: Tensor, y: Tensor | None, batch_idx: int
    ) -> Tensor | None:
        raise NotImplementedError

    def on_train_epoch_end(self, module: TrainingModule) -> None:
        """Nothing to do at the end of a training epoch (the default)."""


class GradientRegime(Regime):
    """Gradient descent on the objective's loss; Lightning steps the optimiser (and clips)."""

    needs_optimizer: ClassVar[bool] = True

    def configure_optimizers(self, module: TrainingModule) -> Any:
        parameters = [p for p in module.model.parameters() if p.requires_grad]
        return optimizer_config(parameters, module.optimizer_factory, module.lr_scheduler_factory)

    def training_step(
        self, module: TrainingModule, x: Tensor, y: Tensor | None, batch_idx: int
    ) -> Tensor | None:
        return self.step(module, x, y, batch_idx)

    def step(
        self,
        module: TrainingModule,
        x: Tensor,
        y: Tensor | None,
        batch_idx: int,
        step_optimizers: StepOptimizers | None = None,
    ) -> Tensor:
        """The loss of a training batch, checked for NaN/Inf, after ``step_optimizers`` (the
        manual steps, whose returned values are logged too) if given; added to the epoch
        means every step, logged on logging steps."""
        out = module(x, y, split="train")
        loss = out.loss.mean()
        logging_step = module.is_logging_step(batch_idx)
        module.check_finite_loss(out, loss, logging_step)
        extra = step_optimizers(module, x, y, out, loss) if step_optimizers else {}
        module.accumulate_training_means(loss, out, extra, batch_idx)
        if logging_step:
            module.log_training_step(loss, out, extra)
        return loss


class AdversarialRegime(GradientRegime):
    """Manual optimisation with two optimisers: one step of the model's on the loss, then one
    of the adversary's on the objective's adversary loss, each clipped by the module's
    ``gradient_clip_val`` (Lightning refuses to clip under manual optimisation)."""

    automatic_optimization: ClassVar[bool] = False

    def configure_optimizers(self, module: TrainingModule) -> Any:
        main = super().configure_optimizers(module)
        adversary = module.objective.adversary_optimizer
        if adversary is None:
            raise VaelabError(
                f"{type(module.objective).__name__} has an adversary but no adversary optimizer"
            )
        main = main if isinstance(main, dict) else {"optimizer": main}
        return [main, {"optimizer": adversary(params=module.objective.adversary_parameters())}]

    def training_step(
        self, module: TrainingModule, x: Tensor, y: Tensor | None, batch_idx: int
    ) -> Tensor | None:
        self.step(module, x, y, batch_idx, self.step_optimizers)
        return None  # the optimisers were stepped here

    def step_optimizers(
        self,
        module: TrainingModule,
        x: Tensor,
        y: Tensor | None,
        out: ObjectiveOutput,
        loss: Tensor,
    ) -> dict[str, Tensor]:
        """The two steps; returns the adversary's terms for logging."""
        model_optimizer, adversary_optimizer = module.optimizers()
        self._step(module, model_optimizer, loss)
        adversary = module.objective.adversary_step(module.model, x, y, out)
        self._step(module, adversary_optimizer, adversary.loss)
        if module.trainer.is_last_batch:
            scheduler = module.lr_schedulers()
            if scheduler is not None:
                scheduler.step()
        return {"adversary_loss": adversary.loss.detach(), **adversary.terms}

    @staticmethod
    def _step(module: TrainingModule, optimizer: Any, loss: Tensor) -> None:
        optimizer.zero_grad()
        module.manual_backward(loss)
        if module.gradient_clip_val:
            module.clip_gradients(
                optimizer,
                gradient_clip_val=module.gradient_clip_val,
                gradient_clip_algorithm=module.gradient_clip_algorithm,
            )
        optimizer.step()


class ClosedFormRegime(Regime):
    """One pass over the training split: every batch goes to the model's ``accumulate``; the
    fit is solved on the epoch's last batch (before its validation and checkpoints), and
    training stops, whatever ``trainer.max_epochs`` says."""

    automatic_optimization: ClassVar[bool] = False
    evaluates_before_training: ClassVar[bool] = False

    def training_step(
        self, module: TrainingModule, x: Tensor, y: Tensor | None, batch_idx: int
    ) -> Tensor | None:
        module.model.accumulate(x, y)
        if batch_idx + 1 == module.trainer.num_training_batches:
            module.model.finish_fit()
        return None

    def on_train_epoch_end(self, module: TrainingModule) -> None:
        module.model.finish_fit()
        module.trainer.should_stop = True  # one pass is the whole fit


def choose_regime(model: LatentVariableModel, objective: Objective) -> Regime:
    """The regime for ``model`` trained on ``objective``, from what they declare: a model with
    ``trains_by_gradient = False`` is fitted in closed form; an objective with an adversary
    is trained adversarially; everything else by plain gradient descent."""
    if not model.trains_by_gradient:
        return ClosedFormRegime()
    if objective.has_adversary:
        return AdversarialRegime()
    return GradientRegime()
