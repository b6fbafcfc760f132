"""A small convolutional classifier whose penultimate layer is the feature space of the
domain-specific FID and precision/recall (the "MNIST FID" of VAE papers, where no
Inception-v3 weights are at hand). Trained on the data set's labels by
``vaelab-train experiment=feature_classifier_mnist``; :mod:`vaelab.evaluation.
feature_extractors` loads it.

It is not a generative model: ``encode`` gives the features as a point mass (so the latent
plots show the feature space), and it has no decoder, prior or samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn
from typing_extensions import override

from vaelab.baselines.point_mass import PointMass
from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel, MissingCapability, input_shape_of
from vaelab.objectives.classification import Classification


class FeatureClassifier(LatentVariableModel):
    """conv(3×3, stride 2) → ReLU → … → linear → ReLU (the ``feature_dim`` features) → linear
    (``num_classes`` logits). Input: images [B, C, H, W] in [0, 1]."""

    config_groups: ClassVar[frozenset[str]] = frozenset({"optimizer", "lr_scheduler"})

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        feature_dim: int = 128,
        channels: Sequence[int] = (32, 64),
    ) -> None:
        super().__init__()
        if int(num_classes) < 2 or int(feature_dim) < 1:
            raise VaelabError(
                f"model.num_classes must be >= 2 and model.feature_dim >= 1, got "
                f"{num_classes} and {feature_dim}"
            )
        self.input_shape = input_shape_of(input_shape)
        self.num_classes = int(num_classes)
        self.latent_dim = int(feature_dim)
        layers: list[nn.Module] = []
        previous = self.input_shape[0]
        for width in channels:
            layers += [nn.Conv2d(previous, int(width), 3, stride=2, padding=1), nn.ReLU()]
            previous = int(width)
        convolutions = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = convolutions(torch.zeros(1, *self.input_shape)).shape[1]
        self.features = nn.Sequential(convolutions, nn.Linear(flat, self.latent_dim), nn.ReLU())
        self.head = nn.Linear(self.latent_dim, self.num_classes)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> PointMass:
        return PointMass(self.features(x))

    @override
    def decode(self, z: Tensor, y: Tensor | None = None):
        raise MissingCapability("FeatureClassifier has no decoder p(x|z)")

    @override
    def sample(self, num: int, y: Tensor | None = None) -> Tensor:
        raise MissingCapability("FeatureClassifier is not a generative model: it has no samples")

    @override
    def default_objective(self) -> Classification:
        return Classification()
