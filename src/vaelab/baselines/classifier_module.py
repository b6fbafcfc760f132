"""The LightningModule that trains the feature classifier on the data set's labels
(``vaelab-train experiment=feature_classifier_mnist``): a classifier, not a latent-variable
model, so it is trained here and not by :class:`~vaelab.module.LatentVariableModule`.

Logged for each stage ∈ {train, val, test}: ``<stage>/loss`` (= the cross-entropy, what is
minimised), ``<stage>/cross_entropy`` (nats per data point) and ``<stage>/error`` (the
misclassified fraction), on the same steps and epochs as the LVM module logs its names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from torch import Tensor
from typing_extensions import override

from vaelab.module import (
    FALLBACK_MONITOR,
    LOSS,
    STAGES,
    epoch_means,
    float32_epoch_means,
    is_logging_step,
    split_batch,
)
from vaelab.monitoring import monitor_logged_metric
from vaelab.objectives.classification import Classification
from vaelab.optim.configure import optimizer_config

if TYPE_CHECKING:
    from vaelab.baselines.feature_classifier import FeatureClassifier


class ClassifierModule(L.LightningModule):
    """Trains ``model`` (a :class:`~vaelab.baselines.feature_classifier.FeatureClassifier`)
    by cross-entropy with ``optimizer`` (and ``lr_scheduler``, stepped per epoch)."""

    def __init__(
        self,
        model: FeatureClassifier,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_scheduler: Callable[..., Any] | None = None,
        data_info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = Classification()
        self.loss.check_data(model, dict(data_info or {}))
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        # plain types only: checkpoints are loaded with torch.load(weights_only=True); the
        # same hyperparameters as when the LVM module trained the classifier
        self.save_hyperparameters(
            {
                "model": type(model).__name__,
                "latent_dim": int(model.feature_dim),
                "input_shape": list(model.input_shape),
                "objective": type(self.loss).__name__,
            }
        )
        self.metric_names = (LOSS, *self.loss.term_names)
        self.epoch_means = epoch_means(self.metric_names)

    def logged_metric_names(self) -> set[str]:
        """Every scalar name this module logs (checked against monitors before training)."""
        return {f"{stage}/{name}" for stage in STAGES for name in self.metric_names}

    def redirected_monitor(self, name: str) -> str | None:
        """A classifier has no bound: a ``val/`` monitor it does not log (the default
        ``val/elbo``) watches ``val/loss`` instead."""
        if name in self.logged_metric_names() or not name.startswith("val/"):
            return None
        return FALLBACK_MONITOR[0]

    @override
    def setup(self, stage: str) -> None:
        """Check the set-up data's labels; point checkpoints at ``val/loss`` if they watch a
        metric the classifier does not log."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None and hasattr(datamodule, "data_info"):
            self.loss.check_data(self.model, datamodule.data_info())
        if stage == "fit" and self._trainer is not None:
            logged = {f"val/{name}" for name in self.metric_names}
            monitor_logged_metric(
                self.trainer, logged, *FALLBACK_MONITOR, type(self.model).__name__
            )

    @override
    def configure_optimizers(self) -> Any:
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        return optimizer_config(parameters, self.optimizer_factory, self.lr_scheduler_factory)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = split_batch(batch)
        out = self.loss(self.model, x, y)
        loss = out.loss.mean()
        if is_logging_step(self._trainer, self.global_step, batch_idx):
            values = {LOSS: loss, **out.terms}
            self.log_dict(
                {f"train/{name}": value.detach().mean() for name, value in values.items()},
                on_step=True,
                on_epoch=False,
                sync_dist=True,
            )
        return loss

    def _evaluation_step(self, stage: str, batch: Any) -> None:
        x, y = split_batch(batch)
        out = self.loss(self.model, x, y)
        for name, per_point in {LOSS: out.loss, **out.terms}.items():
            metric = self.epoch_means[f"{stage}_{name}"]
            metric.update(per_point.detach())
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True)

    @override
    def on_validation_start(self) -> None:
        float32_epoch_means(self.epoch_means)

    @override
    def on_test_start(self) -> None:
        float32_epoch_means(self.epoch_means)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step("test", batch)
