"""Fixed feature networks for the feature-perceptual reconstruction loss
(:class:`vaelab.likelihoods.perceptual.FeaturePerceptualLoss`), built from local files only:
the data set's feature classifier (the domain FID's feature space) or a torchvision VGG state
dict. Each returns a frozen module from images [B, C, H, W] in [0, 1]."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from vaelab.errors import VaelabError, first_line
from vaelab.evaluation.feature_extractors import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_feature_classifier,
)
from vaelab.schema import checked_arguments

VGGArchitecture = Literal["vgg11", "vgg13", "vgg16", "vgg19"]


@checked_arguments("model.likelihood.feature_network")
def classifier_features(run: str) -> nn.Module:
    """The feature layers (``features``: the convolutions, then the feature layer) of the
    classifier a ``vaelab-train experiment=feature_classifier_*`` run trained, from its run dir
    or .ckpt; refused in one line if there is none."""
    path = Path(str(run)).expanduser()
    if not path.exists():
        raise VaelabError(
            f"no feature classifier at {path}: train one with vaelab-train "
            "experiment=feature_classifier_mnist (stored under <log dir>/feature_classifiers/), "
            "or set model.likelihood.feature_network.run to a classifier run dir"
        )
    classifier, _ = load_feature_classifier(path, torch.device("cpu"), setup_data=False)
    features = classifier.features.requires_grad_(False).eval()
    features.input_shape = tuple(classifier.input_shape)  # what the likelihood checks
    return features


class ImageNetInput(nn.Module):
    """A torchvision VGG's convolutional ``features`` fed as on ImageNet: grey images repeated
    over three channels, then normalised with ImageNet's channel statistics."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.features((images - self.mean) / self.std)


@checked_arguments("model.likelihood.feature_network")
def vgg_features(weights: str, architecture: VGGArchitecture = "vgg19") -> nn.Module:
    """torchvision's ``architecture`` with the local state dict ``weights`` (saved with
    ``torch.save(model.state_dict(), path)``; read with weights_only=True, nothing is
    downloaded); its layers are named ``features.<index>``."""
    import torchvision.models

    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise VaelabError(
            f"VGG weights {path} not found: pass a local torchvision {architecture} state dict "
            "(nothing is downloaded) as model.likelihood.feature_network.weights"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network = getattr(torchvision.models, architecture)(weights=None, init_weights=False)
        network.load_state_dict(state)
    except Exception as err:
        raise VaelabError(
            f"{path} is not a torchvision {architecture} state dict ({first_line(err)})"
        ) from err
    return ImageNetInput(network.features).requires_grad_(False).eval()
