"""The one LightningModule: trains any latent-variable model with any objective.

It receives the model (``model=``), the objective (``objective=``), the regulariser's weight
schedule (``beta=``) and the optimiser and LR-scheduler partials; it knows nothing about a
model's parts. Every logged quantity is in nats per data point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MeanMetric
from typing_extensions import override

from vaelab.compiled_loss import CompiledLoss
from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.monitoring import monitor_logged_metric
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.elbo import ELBO
from vaelab.regimes import choose_regime
from vaelab.schedules.base import Weighting
from vaelab.schedules.constant import ConstantBeta

STAGES = ("train", "val", "test")
EVAL_STAGES = ("val", "test")
LOSS = "loss"
#: suffix of a training value's epoch mean (``train/loss_epoch``), Lightning's for on_epoch
EPOCH_MEAN = "_epoch"
#: the metric checkpoints watch when the model logs no ELBO (autoencoders, PCA)
FALLBACK_MONITOR = ("val/loss", "min")


class NonFiniteLossError(VaelabError):
    """The training loss became NaN or Inf; training stops at that step."""


def split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """(x, y) of a batch: the datamodules yield (images, labels or factors)."""
    if isinstance(batch, Tensor):
        return batch, None
    return batch[0], (batch[1] if len(batch) > 1 else None)


def is_logging_step(trainer: L.Trainer | None, global_step: int, batch_idx: int) -> bool:
    """True on the steps whose values Lightning sends to the loggers (its logger connector's
    rule: every ``log_every_n_steps`` optimizer steps, every step of a fast_dev_run), on the
    last step and on an epoch's last batch (so the callback metrics, hence metrics.json, always
    hold train/*). The same on every rank: sync_dist is safe."""
    if trainer is None:
        return False
    if trainer.fast_dev_run:
        return True
    step = global_step + 1
    every = trainer.log_every_n_steps
    last_step = 0 < trainer.max_steps <= step
    last_batch = batch_idx + 1 == trainer.num_training_batches
    return (bool(every) and step % every == 0) or last_step or last_batch


def epoch_means(names: Iterable[str]) -> nn.ModuleDict:
    """One running mean per evaluation stage and logged name, keyed ``<stage>_<name>``.
    nan_strategy="disable": no per-batch NaN scan (a host sync on GPUs), and a NaN bound shows
    up as a NaN mean instead of being silently dropped from it."""
    names = tuple(names)
    return nn.ModuleDict(
        {
            f"{stage}_{name}": MeanMetric(nan_strategy="disable")
            for stage in EVAL_STAGES
            for name in names
        }
    )


def float32_epoch_means(means: nn.ModuleDict) -> None:
    """trainer.precision=bf16-true casts the whole module, the metrics' running sums
    included; a sum of thousands of ≈ −100-nat bounds in bfloat16 is off by whole nats. Keep
    the accumulators in float32."""
    for metric in means.values():
        metric.set_dtype(torch.float32)


class TrainingEpochMeans:
    """The epoch means of the logged training values (``train/<name>_epoch``): per data point,
    i.e. each batch's mean weighted by its size. Summed on the device every step (a few tiny
    kernels, no host sync) and read once, at the epoch's last batch; summed over processes
    first under DDP."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.sums: Tensor | None = None
        self.count = 0

    def reset(self) -> None:
        self.names, self.sums, self.count = (), None, 0

    def add(self, values: Mapping[str, Tensor], batch_size: int) -> None:
        """``values``: [B] per-data-point tensors or batch means (scalars)."""
        means = torch.stack([value.detach().float().mean() for value in values.values()])
        if self.sums is None or tuple(values) != self.names:
            self.names, self.sums, self.count = tuple(values), torch.zeros_like(means), 0
        self.sums += means * batch_size
        self.count += batch_size

    def means(self, reduce_sum: Callable[[Tensor], Tensor] = lambda total: total) -> dict:
        """{name: mean} over the data points added since the last reset; ``reduce_sum`` sums
        a tensor over processes."""
        if self.sums is None:
            return {}
        totals = reduce_sum(torch.cat([self.sums, self.sums.new_tensor([self.count])]))
        return dict(zip(self.names, totals[:-1] / totals[-1], strict=True))


class LatentVariableModule(L.LightningModule):
    """Trains ``model`` on ``objective``: loss = the objective's per-data-point loss, averaged.

    Logged for each stage ∈ {train, val, test}: ``<stage>/loss`` (what is minimised),
    ``<stage>/<objective.bound_name>`` (``elbo`` for the ELBO, ``iwae_bound`` for IWAE) and
    every term the objective names (``recon``, ``kl``, …), plus ``beta``. Models fitted in
    closed form (``trains_by_gradient = False``) are fitted in one pass over the training
    split. Objectives with an adversary are trained with manual optimisation: the model's
    optimiser and the adversary's step in turn, each clipped by ``gradient_clip_val``. The
    regime (:mod:`vaelab.regimes`) is chosen once, here, from what the model and objective
    declare; the training hooks delegate to it. ``beta`` is logged when the module was given a
    ``weighting`` (the ``beta=`` group).
    """

    def __init__(
        self,
        model: LatentVariableModel,
        objective: Objective | None = None,
        weighting: Weighting | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_scheduler: Callable[..., Any] | None = None,
        check_finite: bool = True,
        compile: bool = False,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        data_info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.objective = objective if objective is not None else ELBO()
        # β is logged only for a module given a weighting (the models that take beta=)
        self.logs_beta = weighting is not None
        self.weighting = weighting if weighting is not None else ConstantBeta(1.0)
        self.objective.setup(model, self.weighting, dict(data_info or {}))
        if not model.likelihood_is_normalised:  # a loss in p(x|z)'s place: no bound to log
            self.objective.for_reconstruction_loss(model)
        self.regime = choose_regime(model, self.objective)
        if self.regime.needs_optimizer and optimizer is None:
            raise VaelabError(f"{type(model).__name__} trains by gradient: it needs optimizer=")
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        # stop at the exact step a loss goes NaN/Inf (on GPUs: the next logging step)
        self.check_finite = bool(check_finite)
        self.compile_networks = bool(compile)
        self.compiled_loss: CompiledLoss | None = None
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.automatic_optimization = self.regime.automatic_optimization
        # plain types only: checkpoints are loaded with torch.load(weights_only=True)
        self.save_hyperparameters(
            {
                "model": type(model).__name__,
                "latent_dim": int(model.latent_dim),
                "input_shape": list(model.input_shape),
                "objective": type(self.objective).__name__,
                **self.objective.resolved_choices(),
            }
        )
        for name, value in self.objective.resolved_choices().items():
            rank_zero_info(f"vaelab: objective {type(self.objective).__name__}: {name} = {value}")
        self.metric_names = (LOSS, *self.objective.logged_names())
        #: what the model's parts set from the training step (a temperature), logged by name
        self.step_values = model.at_step(0)
        self.epoch_means = epoch_means(self.metric_names)
        self.training_means = TrainingEpochMeans()

    def logged_metric_names(self) -> set[str]:
        """Every scalar name this module logs (what ModelCheckpoint/EarlyStopping and
        ``optimized_metric`` may watch; checked before training starts)."""
        names = {f"{stage}/{name}" for stage in STAGES for name in self.metric_names}
        names |= {f"train/{name}{EPOCH_MEAN}" for name in self.metric_names}
        return names | ({"beta"} if self.logs_beta else set()) | set(self.step_values)

    @property
    def has_bound(self) -> bool:
        """Whether the objective estimates a bound on log p(x) (autoencoders and PCA do not)."""
        return self.objective.bound_name is not None

    def redirected_monitor(self, name: str) -> str | None:
        """The metric checkpoints watch instead of ``name`` when this model cannot log it: a
        model without a bound (autoencoder, PCA) is checkpointed on ``val/loss``."""
        if name in self.logged_metric_names() or self.has_bound:
            return None
        return FALLBACK_MONITOR[0] if name.startswith("val/") else None

    # -- set-up ---------------------------------------------------------------------------
    def configure_model(self) -> None:
        """``module.compile=true``: the training loss (the objective's whole forward:
        networks, distributions, likelihood, KL) is compiled as one function of the batch
        (:mod:`vaelab.compiled_loss`; the first steps pay the compilation). The modules are
        not wrapped, so parameter names and checkpoints are those of an eager run."""
        if self.compile_networks and self.compiled_loss is None:
            name = f"the training loss of {type(self.model).__name__} under "
            self.compiled_loss = CompiledLoss(
                self._training_objective, name + type(self.objective).__name__
            )

    def setup(self, stage: str) -> None:
        """Hand the objective what the datamodule knows (split sizes, classes) once the data
        is set up; point checkpoints at ``val/loss`` for models without a bound."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None and hasattr(datamodule, "data_info"):
            self.objective.setup(self.model, self.weighting, datamodule.data_info())
        if stage == "fit" and self._trainer is not None and not self.has_bound:
            logged = {f"val/{name}" for name in self.metric_names}
            monitor_logged_metric(
                self.trainer, logged, *FALLBACK_MONITOR, type(self.model).__name__
            )

    def configure_optimizers(self) -> Any:
        return self.regime.configure_optimizers(self)

    # -- steps ----------------------------------------------------------------------------
    def forward(self, x: Tensor, y: Tensor | None = None, split: str = "train") -> ObjectiveOutput:
        """The objective's outputs for a batch of the split ``split`` ("train", "val", "test"),
        after the model's parts are told the training step (:meth:`LatentVariableModel.at_step`);
        the training loss compiled under ``module.compile=true``."""
        self.step_values = self.model.at_step(self.global_step)
        if self.compiled_loss is not None and split == "train" and torch.is_grad_enabled():
            return self.compiled_loss(x, y, self.global_step)
        return self.objective(self.model, x, y, self.weighting, self.global_step, split=split)

    def _training_objective(self, x: Tensor, y: Tensor | None, step: int) -> ObjectiveOutput:
        return self.objective(self.model, x, y, self.weighting, step, split="train")

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x, y = split_batch(batch)
        return self.regime.training_step(self, x, y, batch_idx)

    def on_train_epoch_end(self) -> None:
        self.regime.on_train_epoch_end(self)

    def check_finite_loss(self, out: ObjectiveOutput, loss: Tensor, logging_step: bool) -> None:
        """Stop at a NaN/Inf training loss. On a GPU the check is a host sync that stalls the
        queue: there it runs on logging steps only (and on each epoch's last batch, before any
        checkpoint is written)."""
        check_now = loss.device.type == "cpu" or logging_step
        if self.check_finite and check_now and not math.isfinite(loss.item()):
            raise self._non_finite_loss_error(out, loss)

    def on_train_epoch_start(self) -> None:
        self.training_means.reset()

    def accumulate_training_means(
        self, loss: Tensor, out: ObjectiveOutput, extra: Mapping[str, Tensor], batch_idx: int
    ) -> None:
        """Add a training batch to the epoch means; at the epoch's last batch (or the run's
        last step) log them as ``train/<name>_epoch``, once, before the epoch-end hooks read
        them (the progress line, checkpoints)."""
        values = {LOSS: loss, **self._per_point_values(out), **extra}
        self.training_means.add(values, out.loss.shape[0])
        trainer = self._trainer
        if trainer is None:
            return
        last_batch = batch_idx + 1 == trainer.num_training_batches or trainer.is_last_batch
        if not (last_batch or 0 < trainer.max_steps <= self.global_step + 1):
            return
        reduce_sum = lambda total: trainer.strategy.reduce(total, reduce_op="sum")  # noqa: E731
        means = self.training_means.means(reduce_sum)
        self.log_dict(
            {f"train/{name}{EPOCH_MEAN}": mean for name, mean in means.items()},
            on_step=False,
            on_epoch=True,
        )

    def log_training_step(
        self, loss: Tensor, out: ObjectiveOutput, extra: Mapping[str, Tensor]
    ) -> None:
        """Per-step curves under the stable names train/loss, train/elbo, ... (and ``beta``);
        only on the steps that reach the loggers (every trainer.log_every_n_steps): logging
        every step costs ~20% of a small model's step time, and sync_dist all-reduces here."""
        values = {LOSS: loss, **self._per_point_values(out), **extra}
        self.log_dict(
            {f"train/{name}": value.detach().mean() for name, value in values.items()},
            on_step=True,
            on_epoch=False,
            sync_dist=True,
        )
        if self.logs_beta:
            self.log("beta", float(self.weighting.beta(self.global_step)), on_step=True)
        for name, value in self.step_values.items():  # set by the model's parts this step
            self.log(name, float(value), on_step=True)

    def _per_point_values(self, out: ObjectiveOutput) -> dict[str, Tensor]:
        # only the declared names: a loss's value is never logged under a bound's name
        values = {name: value for name, value in out.terms.items() if name in self.metric_names}
        if self.objective.bound_name is not None and out.bound is not None:
            values[self.objective.bound_name] = out.bound
        return values

    def _non_finite_loss_error(self, out: ObjectiveOutput, loss: Tensor) -> NonFiniteLossError:
        terms = [name for name, value in out.terms.items() if not torch.isfinite(value).all()] or [
            "loss (weighted penalty)"
        ]
        checkpoint = self.trainer.checkpoint_callback if self._trainer is not None else None
        last_good = (checkpoint.last_model_path or checkpoint.best_model_path) if checkpoint else ""
        return NonFiniteLossError(
            f"the training loss became {loss.item()} at step {self.global_step} (epoch "
            f"{self.current_epoch}); non-finite term: {', '.join(terms)}. Last good checkpoint: "
            f"{last_good or 'none saved yet'}. Try a lower optimizer.lr, "
            "trainer.gradient_clip_val=1.0 or a σ floor on the likelihood; "
            "trainer.detect_anomaly=true finds the operation that produced it"
        )

    def is_logging_step(self, batch_idx: int) -> bool:
        return is_logging_step(self._trainer, self.global_step, batch_idx)

    def _evaluation_step(self, stage: str, batch: Any) -> None:
        sanity_checking = self._trainer is not None and self._trainer.sanity_checking
        if sanity_checking and not self.regime.evaluates_before_training:
            return  # a closed-form model is fitted after the sanity check: nothing to evaluate
        x, y = split_batch(batch)
        out = self(x, y, split=stage)
        values = {LOSS: out.loss, **self._per_point_values(out)}
        for name, per_point in values.items():
            metric = self.epoch_means[f"{stage}_{name}"]
            metric.update(per_point.detach())
            self.log(
                f"{stage}/{name}",
                metric,
                on_step=False,
                on_epoch=True,
                prog_bar=(name == self.objective.bound_name),
            )

    def on_validation_start(self) -> None:
        float32_epoch_means(self.epoch_means)

    def on_test_start(self) -> None:
        float32_epoch_means(self.epoch_means)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step("test", batch)
