"""How :class:`~vaelab.module.LatentVariableModule` trains a model: one small strategy per
regime, chosen once when the module is built (:func:`choose_regime`), to which the module's
Lightning hooks delegate.

- :class:`GradientRegime`: gradient descent with Lightning's automatic optimisation;
- :class:`AdversarialRegime`: manual optimisation, the objective's optimiser groups stepped
  in turn (FactorVAE's model and discriminator; VAE-GAN's encoder, decoder, discriminator);
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
        (group,) = module.objective.optimiser_groups(module.model)
        return optimizer_config(
            group.parameters, module.optimizer_factory, module.lr_scheduler_factory
        )

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
    """Manual optimisation over the objective's optimiser groups
    (:meth:`~vaelab.objectives.base.Objective.optimiser_groups`: FactorVAE's model and
    discriminator, VAE-GAN's encoder, decoder and discriminator): on each batch, one step of
    each group's optimiser in order, on the loss the objective gives for that group after the
    earlier groups stepped, each clipped by the module's ``gradient_clip_val`` (Lightning
    refuses to clip under manual optimisation). Every optimiser's state is in the checkpoint
    (Lightning saves and restores all that ``configure_optimizers`` returns, in order); the
    ``lr_scheduler=`` steps every group that uses the module's ``optimizer=``."""

    automatic_optimization: ClassVar[bool] = False

    def __init__(self) -> None:
        self.group_names: tuple[str, ...] = ()

    def configure_optimizers(self, module: TrainingModule) -> Any:
        configured = []
        groups = module.objective.optimiser_groups(module.model)
        for group in groups:
            factory = group.optimizer or module.optimizer_factory
            if factory is None:
                raise VaelabError(
                    f"{type(module.objective).__name__}'s optimiser group {group.name} has no "
                    "optimizer: set optimizer="
                )
            scheduler = module.lr_scheduler_factory if group.optimizer is None else None
            built = optimizer_config(group.parameters, factory, scheduler)
            configured.append(built if isinstance(built, dict) else {"optimizer": built})
        self.group_names = tuple(group.name for group in groups)
        return configured

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
        loss: Tensor,  # noqa: ARG002 - the first group's loss comes from the objective
    ) -> dict[str, Tensor]:
        """One step of each group in turn; returns the later groups' losses
        (``<name>_loss``) and every group's terms, for logging."""
        optimizers = module.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        logged: dict[str, Tensor] = {}
        for index, (name, optimizer) in enumerate(zip(self.group_names, optimizers, strict=True)):
            group = module.objective.group_loss(name, module.model, x, y, out)
            self._step(module, optimizer, group.loss)
            if index > 0:
                logged[f"{name}_loss"] = group.loss.detach()
            logged.update({term: value.detach() for term, value in group.terms.items()})
        if module.trainer.is_last_batch:
            schedulers = module.lr_schedulers()
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                if scheduler is not None:
                    scheduler.step()
        return logged

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
    (or any objective with several optimiser groups) is trained adversarially; everything
    else by plain gradient descent."""
    if not model.trains_by_gradient:
        return ClosedFormRegime()
    if len(objective.optimiser_groups(model)) > 1:
        return AdversarialRegime()
    return GradientRegime()
