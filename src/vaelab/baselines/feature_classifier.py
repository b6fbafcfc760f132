"""A small convolutional classifier whose penultimate layer is the feature space of the
domain-specific FID and precision/recall (the "MNIST FID" of VAE papers, where no
Inception-v3 weights are at hand). Trained on the data set's labels by
``vaelab-train experiment=feature_classifier_mnist`` with its own
:class:`~vaelab.baselines.classifier_module.ClassifierModule`;
:func:`vaelab.evaluation.feature_extractors.load_feature_classifier` loads it.

It is not a generative model: a plain network, not a latent-variable model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

import torch
from torch import Tensor, nn

from vaelab.baselines.classifier_module import ClassifierModule
from vaelab.errors import VaelabError
from vaelab.models.interface import input_shape_of
from vaelab.schema import ImageShape, PositiveInt, Range, checked_arguments


@checked_arguments("model")
class FeatureClassifier(nn.Module):
    """conv(3×3, stride 2) → ReLU → … → linear → ReLU (the ``feature_dim`` features) → linear
    (``num_classes`` logits). Input: images [B, C, H, W] in [0, 1]."""

    #: the groups it takes besides model= (``vaelab.builders`` refuses the others)
    config_groups: ClassVar[frozenset[str]] = frozenset({"optimizer", "lr_scheduler"})
    #: what it reads from a batch's y: the class labels it learns
    conditions_on: ClassVar[str] = "classes"
    #: the LightningModule that trains it (``vaelab.builders.build_module`` builds this one)
    lightning_module: ClassVar[type] = ClassifierModule

    def __init__(
        self,
        input_shape: ImageShape,
        num_classes: Annotated[int, Range(ge=2)],
        feature_dim: PositiveInt = 128,
        channels: Sequence[PositiveInt] = (32, 64),
    ) -> None:
        super().__init__()
        if int(num_classes) < 2:  # from the data (builders), not from the config
            raise VaelabError(f"model.num_classes must be >= 2, got {num_classes}")
        self.input_shape = input_shape_of(input_shape)
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)
        layers: list[nn.Module] = []
        previous = self.input_shape[0]
        for width in channels:
            layers += [nn.Conv2d(previous, int(width), 3, stride=2, padding=1), nn.ReLU()]
            previous = int(width)
        convolutions = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = convolutions(torch.zeros(1, *self.input_shape)).shape[1]
        self.features = nn.Sequential(convolutions, nn.Linear(flat, self.feature_dim), nn.ReLU())
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        """The class logits [B, num_classes]."""
        return self.logits(x)
