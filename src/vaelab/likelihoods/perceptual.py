"""The feature-perceptual reconstruction loss of DFC-VAE (Hou, Shen, Sun & Qiu 2017, "Deep
Feature Consistent Variational Autoencoder", WACV): distances between the activations of a
fixed feature network at chosen layers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from vaelab.errors import VaelabError
from vaelab.likelihoods.reconstruction_loss import ReconstructionLoss
from vaelab.schema import PositiveFloat, checked_arguments


@checked_arguments("model.likelihood")
class FeaturePerceptualLoss(ReconstructionLoss):
    """L(x, x̂) = weight · Σ_l ½·‖Φ_l(x̂) − Φ_l(x)‖² / (C_l H_l W_l), Hou et al.'s eq. 5 summed
    over the ``layers`` l as in their eq. 6, Φ_l the activations of the fixed
    ``feature_network`` at the layer named l (a submodule's dotted name).

    The feature network is built by its own config node (``model.likelihood.feature_network``)
    and never downloaded: the data set's classifier that the domain FID uses
    (:func:`vaelab.evaluation.feature_networks.classifier_features`, trained by ``vaelab-train
    experiment=feature_classifier_mnist``) or a local torchvision VGG state dict
    (:func:`vaelab.evaluation.feature_networks.vgg_features`, Hou et al.'s VGG-19 layers
    relu1_1, relu2_1, relu3_1 are ``features.1``, ``features.6``, ``features.11``). Its weights
    are frozen and it stays in evaluation mode; gradients reach the decoder through it.
    ``weight`` (null: C·H·W of the image, the scale of a per-pixel sum) sets the loss against
    the KL. A loss, not a normalised likelihood.
    """

    def __init__(
        self,
        feature_network: nn.Module,
        layers: Sequence[str],
        weight: PositiveFloat | None = None,
    ) -> None:
        super().__init__()
        self.layers = tuple(str(layer) for layer in layers)
        if not self.layers:
            raise VaelabError(
                "model.likelihood.layers is empty: name the feature layers to compare"
            )
        known = set(get_graph_node_names(feature_network.eval())[1])
        unknown = [layer for layer in self.layers if layer not in known]
        if unknown:
            raise VaelabError(
                f"model.likelihood.layers: the feature network has no layer {', '.join(unknown)}; "
                f"its layers are {', '.join(sorted(known))}"
            )
        #: the image shape the network was trained on, where it says (a feature classifier)
        self.network_input_shape = getattr(feature_network, "input_shape", None)
        self.features = create_feature_extractor(feature_network, return_nodes=list(self.layers))
        self.features.requires_grad_(False)
        self.requested_weight = None if weight is None else float(weight)
        self.weight = 1.0 if weight is None else float(weight)  # set from the image in setup

    def setup(self, input_shape: Sequence[int]) -> None:
        takes = self.network_input_shape
        if takes is not None and tuple(takes) != tuple(int(n) for n in input_shape):
            raise VaelabError(
                f"the feature network takes images {tuple(takes)}, the data are "
                f"{tuple(int(n) for n in input_shape)}: use a feature classifier trained on this "
                "data set (model.likelihood.feature_network.run)"
            )
        self.weight = self.requested_weight or float(math.prod(int(n) for n in input_shape))

    def train(self, mode: bool = True) -> FeaturePerceptualLoss:
        """The feature network stays in evaluation mode (fixed features)."""
        super().train(mode)
        self.features.eval()
        return self

    def loss(self, reconstruction: Tensor, x: Tensor) -> Tensor:
        both = self.features(torch.cat([reconstruction, x.to(reconstruction.dtype)]))
        total = reconstruction.new_zeros(reconstruction.shape[0])
        for layer in self.layers:
            decoded, target = both[layer].chunk(2)
            squared = (decoded - target).square().flatten(1)
            total = total + 0.5 * squared.mean(1)  # ½‖·‖² / (C_l H_l W_l)
        return self.weight * total

    def extra_repr(self) -> str:
        return f"layers={self.layers}, weight={self.weight}"
