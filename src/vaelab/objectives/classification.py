"""Cross-entropy of a classifier's labels: the objective of the feature classifier behind the
domain-specific FID (``vaelab-train experiment=feature_classifier_mnist``). Not a bound on
log p(x); logs ``<stage>/cross_entropy`` (nats per data point) and ``<stage>/error`` (the
misclassified fraction)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import Weighting


class Classification(Objective):
    """loss = −log softmax(logits(x))[y] per data point; the model answers ``logits(x)``."""

    bound_name = None
    term_names = ("cross_entropy", "error")

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        if "num_classes" not in data_info:
            return  # called again once the datamodule is set up
        classes = data_info["num_classes"]
        if classes is None:
            raise VaelabError(
                "the feature classifier learns the data set's labels, but this data set has "
                "none; choose a labelled data= (mnist, fashion_mnist, digits, cifar10)"
            )
        if int(classes) != model.num_classes:
            raise VaelabError(
                f"model.num_classes={model.num_classes} but the data set has {classes} "
                f"classes; set model.num_classes={classes}"
            )

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
    ) -> ObjectiveOutput:
        if y is None:
            raise VaelabError("the feature classifier needs labelled batches (x, y)")
        logits = model.logits(x)
        cross_entropy = F.cross_entropy(logits.float(), y.long(), reduction="none")
        error = (logits.argmax(dim=1) != y).float()
        return ObjectiveOutput(
            loss=cross_entropy,
            bound=None,
            terms={"cross_entropy": cross_entropy, "error": error},
        )
