"""Metrics that apply to some runs only, as one small hook of ``vaelab-eval``: each says
whether it applies to the evaluated run (and why not) and computes named numbers.

- disentanglement (:mod:`vaelab.evaluation.disentanglement`): the data module has ground-truth
  factors (it implements :class:`~vaelab.data.ground_truth.GroundTruthData`);
- sample quality (FID, precision, recall): the data set has labels and a feature space is
  available (Inception-v3 weights given, or a stored feature classifier of this data set).

``eval.<name>.enabled``: ``auto`` computes a metric where it applies and records why not
elsewhere; ``true`` makes a metric that does not apply an error; ``false`` skips it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from vaelab.data.ground_truth import GroundTruthData
from vaelab.errors import VaelabError
from vaelab.evaluation.disentanglement import (
    METRIC_NAMES as DISENTANGLEMENT_NAMES,
)
from vaelab.evaluation.disentanglement import (
    DisentanglementSettings,
    compute_disentanglement,
)
from vaelab.models.interface import LatentVariableModel, MissingCapability
from vaelab.samplers.base import Sampler

SAMPLE_QUALITY_NAMES = ("fid", "precision", "recall")
#: eval/metrics.json key of the sample sizes the disentanglement metrics were computed with
DISENTANGLEMENT_SETTINGS_KEY = "disentanglement_settings"


@dataclass
class EvaluationContext:
    """What a conditional metric may use of the evaluated run."""

    model: LatentVariableModel
    datamodule: Any
    run_config: DictConfig
    device: torch.device
    #: ``eval.<metric name>`` of vaelab-eval's config
    settings: DictConfig
    #: the test images (x [B, C, H, W] in [0, 1]) batch by batch, as the other metrics see them
    test_images: Callable[[], Iterable[Tensor]]
    #: where samples draw their codes (``sampler=``); None: the model's p(z)
    sampler: Sampler | None = None


@dataclass
class ConditionalResults:
    values: dict[str, Any] = field(default_factory=dict)
    #: metric group → why it was not computed
    skipped: dict[str, str] = field(default_factory=dict)


class ConditionalMetric(ABC):
    #: the key of its settings under ``eval.``
    name: ClassVar[str]
    #: the scalar names it adds to metrics.json
    scalar_names: ClassVar[tuple[str, ...]]

    @abstractmethod
    def skip_reason(self, context: EvaluationContext) -> str | None:
        """None when the metric applies to the run, else why not (one line)."""

    @abstractmethod
    def compute(self, context: EvaluationContext) -> dict[str, Any]: ...


class Disentanglement(ConditionalMetric):
    name = "disentanglement"
    scalar_names = DISENTANGLEMENT_NAMES

    def skip_reason(self, context: EvaluationContext) -> str | None:
        if not isinstance(context.datamodule, GroundTruthData):
            return (
                f"{type(context.datamodule).__name__} has no ground-truth factors (a data set "
                "generated from known factors, such as dSprites, has them)"
            )
        return None

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        options = OmegaConf.to_container(context.settings, resolve=True)
        options.pop("enabled", None)
        settings = DisentanglementSettings(**options)
        model, device = context.model, context.device

        @torch.no_grad()
        def encoder_mean(observations: Tensor) -> Tensor:
            return model.encode(observations.to(device)).mean

        where = "this CPU" if device.type == "cpu" else str(device)
        scores = compute_disentanglement(context.datamodule, encoder_mean, settings, where=where)
        scores[DISENTANGLEMENT_SETTINGS_KEY] = asdict(settings)  # the sizes used, resolved
        return scores


class SampleQualityMetric(ConditionalMetric):
    name = "sample_quality"
    scalar_names = SAMPLE_QUALITY_NAMES

    def _extractor(self, context: EvaluationContext):
        from vaelab.evaluation.feature_extractors import (
            InceptionFeatures,
            find_feature_classifier,
            load_classifier_features,
        )

        settings = context.settings
        if settings.get("inception_weights"):
            return InceptionFeatures(settings.inception_weights).to(context.device)
        run = settings.get("feature_classifier")
        if not run:
            log_dir = OmegaConf.select(context.run_config, "paths.log_dir", default=None)
            target = OmegaConf.select(context.run_config, "data._target_", default="")
            run = find_feature_classifier(log_dir, target) if log_dir else None
        if not run:
            return None
        return load_classifier_features(run, context.device, tuple(context.model.input_shape))

    def skip_reason(self, context: EvaluationContext) -> str | None:
        if getattr(context.datamodule, "num_classes", None) is None:
            return "the data set has no labels to train a feature classifier on"
        self.extractor = self._extractor(context)
        if self.extractor is None:
            return (
                "no feature space: train the data set's classifier (vaelab-train "
                "experiment=feature_classifier_mnist) or pass "
                "eval.sample_quality.inception_weights=<local Inception-v3 state dict>"
            )
        return None

    def compute(self, context: EvaluationContext) -> dict[str, Any]:
        from vaelab.evaluation.sample_quality import sample_quality

        settings = context.settings
        try:
            result = sample_quality(
                context.model,
                context.test_images(),
                self.extractor,
                int(settings.num_samples),
                int(settings.seed),
                sampler=context.sampler,
            )
        except MissingCapability as missing:
            return {"sample_quality_note": f"no samples: {missing}"}
        return {
            "fid": result.fid,
            "precision": result.precision,
            "recall": result.recall,
            "sample_quality": {
                "num_real": result.num_real,
                "num_generated": result.num_generated,
                "neighbours": result.neighbours,
                "feature_space": result.feature_space,
            },
        }


CONDITIONAL_METRICS: tuple[ConditionalMetric, ...] = (Disentanglement(), SampleQualityMetric())


def conditional_metrics(
    make_context: Callable[[DictConfig], EvaluationContext], eval_settings: DictConfig
) -> ConditionalResults:
    """Run each metric of :data:`CONDITIONAL_METRICS` that applies (``make_context`` gets the
    metric's ``eval.<name>`` settings)."""
    results = ConditionalResults()
    for metric in CONDITIONAL_METRICS:
        settings = eval_settings.get(metric.name)
        enabled = "auto" if settings is None else str(settings.get("enabled", "auto")).lower()
        if enabled == "false":
            results.skipped[metric.name] = f"disabled (eval.{metric.name}.enabled=false)"
            continue
        context = make_context(settings if settings is not None else OmegaConf.create({}))
        reason = metric.skip_reason(context)
        if reason is not None:
            if enabled == "true":
                raise VaelabError(
                    f"eval.{metric.name}.enabled=true but {reason}; use "
                    f"eval.{metric.name}.enabled=auto"
                )
            results.skipped[metric.name] = reason
            continue
        results.values.update(metric.compute(context))
    return results


#: every scalar a conditional metric may add (TensorBoard, the summary, vaelab-report)
CONDITIONAL_SCALARS = tuple(name for m in CONDITIONAL_METRICS for name in m.scalar_names)
