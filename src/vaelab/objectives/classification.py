"""Cross-entropy of a classifier's labels: the loss of the feature classifier behind the
domain-specific FID (``vaelab-train experiment=feature_classifier_mnist``), trained by
:class:`~vaelab.baselines.classifier_module.ClassifierModule`. Not a bound on log p(x): it
gives ``cross_entropy`` (nats per data point) and ``error`` (1 for a misclassified point)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch.nn.functional as F
from torch import Tensor, nn

from vaelab.errors import VaelabError
from vaelab.objectives.base import ObjectiveOutput


class Classifier(Protocol):
    """What the loss needs of a classifier: its number of classes and its logits."""

    num_classes: int

    def logits(self, x: Tensor) -> Tensor: ...


class Classification(nn.Module):
    """loss = −log softmax(logits(x))[y] per data point; the classifier answers ``logits(x)``."""

    term_names = ("cross_entropy", "error")

    def check_data(self, classifier: Classifier, data_info: Mapping[str, Any]) -> None:
        """Refuse data without labels, or with another number of classes than the
        classifier's; ``data_info`` without ``num_classes`` (not set up yet) is not checked."""
        if "num_classes" not in data_info:
            return
        classes = data_info["num_classes"]
        if classes is None:
            raise VaelabError(
                "the feature classifier learns the data set's labels, but this data set has "
                "none; choose a labelled data= (mnist, fashion_mnist, digits, cifar10)"
            )
        if int(classes) != classifier.num_classes:
            raise VaelabError(
                f"model.num_classes={classifier.num_classes} but the data set has {classes} "
                f"classes; set model.num_classes={classes}"
            )

    def forward(self, classifier: Classifier, x: Tensor, y: Tensor | None) -> ObjectiveOutput:
        """Per-data-point ``loss`` (the cross-entropy) and ``terms``; ``bound`` is None."""
        if y is None:
            raise VaelabError("the feature classifier needs labelled batches (x, y)")
        logits = classifier.logits(x)
        cross_entropy = F.cross_entropy(logits.float(), y.long(), reduction="none")
        error = (logits.argmax(dim=1) != y).float()
        return ObjectiveOutput(
            loss=cross_entropy,
            bound=None,
            terms={"cross_entropy": cross_entropy, "error": error},
        )
