"""The one LightningModule: trains any latent-variable model with any objective.

It receives the model (``model=``), the objective (``objective=``), the regulariser's weight
schedule (``beta=``) and the optimiser and LR-scheduler partials; it knows nothing about a
model's parts. Every logged quantity is in nats per data point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MeanMetric
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.monitoring import monitor_logged_metric
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.elbo import ELBO
from vaelab.optim.configure import optimizer_config
from vaelab.schedules.base import Weighting
from vaelab.schedules.constant import ConstantBeta

STAGES = ("train", "val", "test")
EVAL_STAGES = ("val", "test")
LOSS = "loss"
#: the metric checkpoints watch when the model logs no ELBO (autoencoders, PCA)
FALLBACK_MONITOR = ("val/loss", "min")


class NonFiniteLossError(VaelabError):
    """The training loss became NaN or Inf; training stops at that step."""


def split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """(x, y) of a batch: the datamodules yield (images, labels or factors)."""
    if isinstance(batch, Tensor):
        return batch, None
    return batch[0], (batch[1] if len(batch) > 1 else None)


class LatentVariableModule(L.LightningModule):
    """Trains ``model`` on ``objective``: loss = the objective's per-data-point loss, averaged.

    Logged for each stage ∈ {train, val, test}: ``<stage>/loss`` (what is minimised),
    ``<stage>/<objective.bound_name>`` (``elbo`` for the ELBO, ``iwae_bound`` for IWAE) and
    every term the objective names (``recon``, ``kl``, …), plus ``beta``. Models fitted in
    closed form (``trains_by_gradient = False``) are fitted in one pass over the training
    split. Objectives with an adversary are trained with manual optimisation: the model's
    optimiser and the adversary's step in turn, each clipped by ``gradient_clip_val``.
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
        self.weighting = weighting if weighting is not None else ConstantBeta(1.0)
        self.objective.setup(model, self.weighting, dict(data_info or {}))
        if model.trains_by_gradient and optimizer is None:
            raise VaelabError(f"{type(model).__name__} trains by gradient: it needs optimizer=")
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        # stop at the exact step a loss goes NaN/Inf (on GPUs: the next logging step)
        self.check_finite = bool(check_finite)
        self.compile_networks = bool(compile)
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.automatic_optimization = model.trains_by_gradient and not self.objective.has_adversary
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
        # nan_strategy="disable": no per-batch NaN scan (a host sync on GPUs), and a NaN bound
        # shows up as a NaN mean instead of being silently dropped from it
        self.epoch_means = nn.ModuleDict(
            {
                f"{stage}_{name}": MeanMetric(nan_strategy="disable")
                for stage in EVAL_STAGES
                for name in self.metric_names
            }
        )

    def logged_metric_names(self) -> set[str]:
        """Every scalar name this module logs (what ModelCheckpoint/EarlyStopping and
        ``optimized_metric`` may watch; checked before training starts)."""
        names = {f"{stage}/{name}" for stage in STAGES for name in self.metric_names}
        return names | ({"beta"} if "beta" in self.model.config_groups else set())

    def redirected_monitor(self, name: str) -> str | None:
        """The metric checkpoints watch instead of ``name`` when this model cannot log it: a
        model without an ELBO (autoencoder, PCA) is checkpointed on ``val/loss``."""
        if name in self.logged_metric_names() or "elbo" in self.metric_names:
            return None
        return FALLBACK_MONITOR[0] if name.startswith("val/") else None

    # -- set-up ---------------------------------------------------------------------------
    def configure_model(self) -> None:
        """``module.compile=true``: torch.compile the model's submodules in place (fused
        kernels, fewer launches; the first steps pay the compilation). In place, so parameter
        names and checkpoints are the same as without compilation."""
        if self.compile_networks and not getattr(self, "_networks_compiled", False):
            for child in self.model.children():
                if any(True for _ in child.parameters()):
                    child.compile()
            self._networks_compiled = True

    def setup(self, stage: str) -> None:
        """Hand the objective what the datamodule knows (split sizes, classes) once the data
        is set up; point checkpoints at ``val/loss`` for models without an ELBO."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None and hasattr(datamodule, "data_info"):
            self.objective.setup(self.model, self.weighting, datamodule.data_info())
        if stage == "fit" and self._trainer is not None and "elbo" not in self.metric_names:
            logged = {f"val/{name}" for name in self.metric_names}
            monitor_logged_metric(
                self.trainer, logged, *FALLBACK_MONITOR, type(self.model).__name__
            )

    def configure_optimizers(self) -> Any:
        if not self.model.trains_by_gradient:
            return None
        model_parameters = [p for p in self.model.parameters() if p.requires_grad]
        main = optimizer_config(model_parameters, self.optimizer_factory, self.lr_scheduler_factory)
        if not self.objective.has_adversary:
            return main
        adversary = self.objective.adversary_optimizer
        if adversary is None:
            raise VaelabError(
                f"{type(self.objective).__name__} has an adversary but no adversary optimizer"
            )
        main = main if isinstance(main, dict) else {"optimizer": main}
        return [main, {"optimizer": adversary(params=self.objective.adversary_parameters())}]

    # -- steps ----------------------------------------------------------------------------
    def forward(self, x: Tensor, y: Tensor | None = None) -> ObjectiveOutput:
        return self.objective(self.model, x, y, self.weighting, self.global_step)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x, y = split_batch(batch)
        if not self.model.trains_by_gradient:
            self.model.accumulate(x, y)
            if batch_idx + 1 == self.trainer.num_training_batches:
                self.model.finish_fit()  # before this epoch's validation and checkpoints
            return None
        out = self(x, y)
        loss = out.loss.mean()
        logging_step = self._is_logging_step(batch_idx)
        # on a GPU the check is a host sync that stalls the queue: there it runs on logging
        # steps only (and on each epoch's last batch, before any checkpoint is written)
        check_now = loss.device.type == "cpu" or logging_step
        if self.check_finite and check_now and not math.isfinite(loss.item()):
            raise self._non_finite_loss_error(out, loss)
        extra: dict[str, Tensor] = {}
        if not self.automatic_optimization:
            extra = self._manual_steps(x, y, out, loss)
        if logging_step:
            # per-step curves under the stable names train/loss, train/elbo, ...; only on the
            # steps that reach the loggers (every trainer.log_every_n_steps): logging every
            # step costs ~20% of a small model's step time, and sync_dist all-reduces here
            values = {LOSS: loss, **self._per_point_values(out), **extra}
            self.log_dict(
                {f"train/{name}": value.detach().mean() for name, value in values.items()},
                on_step=True,
                on_epoch=False,
                sync_dist=True,
            )
            if "beta" in self.model.config_groups:
                self.log("beta", float(self.weighting.beta(self.global_step)), on_step=True)
        return loss if self.automatic_optimization else None

    def _manual_steps(
        self, x: Tensor, y: Tensor | None, out: ObjectiveOutput, loss: Tensor
    ) -> dict[str, Tensor]:
        """One step of the model's optimiser on ``loss``, then one of the adversary's on the
        objective's adversary loss; returns the adversary's terms for logging."""
        model_optimizer, adversary_optimizer = self.optimizers()
        self._step(model_optimizer, loss)
        adversary = self.objective.adversary_step(self.model, x, y, out)
        self._step(adversary_optimizer, adversary.loss)
        if self.trainer.is_last_batch:
            scheduler = self.lr_schedulers()
            if scheduler is not None:
                scheduler.step()
        return {"adversary_loss": adversary.loss.detach(), **adversary.terms}

    def _step(self, optimizer, loss: Tensor) -> None:
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.gradient_clip_val,
                gradient_clip_algorithm=self.gradient_clip_algorithm,
            )
        optimizer.step()

    def on_train_epoch_end(self) -> None:
        if not self.model.trains_by_gradient:
            self.model.finish_fit()
            self.trainer.should_stop = True  # one pass is the whole fit

    def _per_point_values(self, out: ObjectiveOutput) -> dict[str, Tensor]:
        values = dict(out.terms)
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

    def _is_logging_step(self, batch_idx: int) -> bool:
        """True on the steps whose values Lightning sends to the loggers (its logger
        connector's rule: every ``log_every_n_steps`` optimizer steps, every step of a
        fast_dev_run), on the last step and on an epoch's last batch (so the callback metrics,
        hence metrics.json, always hold train/*). The same on every rank: sync_dist is safe."""
        trainer = self._trainer
        if trainer is None:
            return False
        if trainer.fast_dev_run:
            return True
        step = self.global_step + 1
        every = trainer.log_every_n_steps
        last_step = 0 < trainer.max_steps <= step
        last_batch = batch_idx + 1 == trainer.num_training_batches
        return (bool(every) and step % every == 0) or last_step or last_batch

    def _evaluation_step(self, stage: str, batch: Any) -> None:
        sanity_checking = self._trainer is not None and self._trainer.sanity_checking
        if sanity_checking and not self.model.trains_by_gradient:
            return  # a closed-form model is fitted after the sanity check: nothing to evaluate
        x, y = split_batch(batch)
        out = self(x, y)
        values = {LOSS: out.loss, **self._per_point_values(out)}
        for name, per_point in values.items():
            metric = self.epoch_means[f"{stage}_{name}"]
            metric.update(per_point.detach())
            self.log(
                f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=(name == "elbo")
            )

    def _float32_epoch_means(self) -> None:
        """trainer.precision=bf16-true casts the whole module, the metrics' running sums
        included; a sum of thousands of ≈ −100-nat bounds in bfloat16 is off by whole nats.
        Keep the accumulators in float32."""
        for metric in self.epoch_means.values():
            metric.set_dtype(torch.float32)

    def on_validation_start(self) -> None:
        self._float32_epoch_means()
        self.objective.set_evaluated_split("val")

    def on_test_start(self) -> None:
        self._float32_epoch_means()
        self.objective.set_evaluated_split("test")

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step("test", batch)
