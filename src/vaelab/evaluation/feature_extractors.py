"""Feature spaces for FID and precision/recall: Inception-v3 from a local weights file, or the
data set's own classifier (``vaelab-train experiment=feature_classifier_mnist``).

An extractor is a module from images [B, C, H, W] in [0, 1] to features [B, K] with a
``num_features`` attribute and a ``description`` saying which space the numbers are in
(FIDs in different spaces are not comparable). Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn

from vaelab.errors import VaelabError, first_line

#: the classifiers vaelab-train experiment=feature_classifier_* stores: <log dir>/<this>/<data>
CLASSIFIER_DIR = "feature_classifiers"
#: Inception-v3's input side and ImageNet's channel statistics (torchvision's weights)
INCEPTION_SIDE = 299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: a parameter every torchvision Inception-v3 state dict holds
INCEPTION_KEY = "Mixed_7c.branch_pool.conv.weight"


class InceptionFeatures(nn.Module):
    """The 2048 pool features of torchvision's Inception-v3 with the weights in
    ``weights_path`` (a state dict saved with ``torch.save(model.state_dict(), path)``).
    Grey images are repeated over three channels, resized to 299×299 (bilinear) and
    normalised with ImageNet's statistics. torchvision's network is not the TensorFlow one of
    the original FID code, so its numbers are close to but not the same as published FIDs."""

    num_features = 2048

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise VaelabError(
                f"Inception-v3 weights {path} not found; pass a local state dict file "
                "(nothing is downloaded), or leave inception_weights unset to use the data "
                "set's feature classifier"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if INCEPTION_KEY not in state:  # before building the network: a quick answer
                raise KeyError(f"no {INCEPTION_KEY}")
            has_aux = any(key.startswith("AuxLogits.") for key in state)
            network = inception_v3(weights=None, aux_logits=has_aux, init_weights=False)
            network.load_state_dict(state)
        except Exception as err:
            raise VaelabError(
                f"{path} is not a torchvision Inception-v3 state dict ({first_line(err)})"
            ) from err
        network.fc = nn.Identity()
        self.network = network.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.description = f"Inception-v3 pool features ({path.name})"

    def forward(self, images: Tensor) -> Tensor:
        images = images.float()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = F.interpolate(
            images, size=(INCEPTION_SIDE, INCEPTION_SIDE), mode="bilinear", align_corners=False
        )
        return self.network((images - self.mean) / self.std)


class ClassifierFeatures(nn.Module):
    """The penultimate layer of a trained :class:`~vaelab.baselines.feature_classifier.
    FeatureClassifier`."""

    def __init__(self, classifier: nn.Module, description: str) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = int(classifier.feature_dim)
        self.description = description

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(images.float())


def find_feature_classifier(log_dir: str | Path, data_target: str) -> Path | None:
    """The newest stored classifier run under ``<log_dir>/feature_classifiers/`` trained on
    the data module ``data_target`` (its config's ``data._target_``), or None."""
    folder = Path(log_dir) / CLASSIFIER_DIR
    runs = []
    for config in folder.glob("*/config.yaml"):
        try:
            target = OmegaConf.select(OmegaConf.load(config), "data._target_")
        except Exception:  # a damaged run is not a candidate
            continue
        if target == data_target and (config.parent / "checkpoints").is_dir():
            runs.append(config.parent)
    return max(runs, key=lambda run: run.stat().st_mtime) if runs else None


def load_classifier_features(
    run: str | Path, device: torch.device, input_shape: tuple[int, ...]
) -> ClassifierFeatures:
    """The feature classifier of a vaelab-train run dir (or .ckpt), checked against the
    evaluated data's ``input_shape``."""
    model, run_dir = load_feature_classifier(run, device)
    if tuple(model.input_shape) != tuple(input_shape):
        raise VaelabError(
            f"the feature classifier {run_dir} takes images {model.input_shape}, "
            f"the evaluated data are {tuple(input_shape)}; train one on this data set"
        )
    return ClassifierFeatures(model, f"feature classifier {run_dir}")


def load_feature_classifier(
    run: str | Path, device: torch.device, setup_data: bool = True
) -> tuple[nn.Module, Path]:
    """The trained classifier of a ``vaelab-train experiment=feature_classifier_*`` run dir
    (or .ckpt) and its run dir; a run of anything else is refused in one line. Weights are
    read with ``torch.load(weights_only=True)``; ``setup_data=False`` reads no data file."""
    from vaelab.baselines.feature_classifier import FeatureClassifier
    from vaelab.evaluation.checkpoint import load_run, load_run_config, locate_checkpoint

    location = locate_checkpoint(run)
    target = OmegaConf.select(load_run_config(location.config), "model._target_")
    if target != f"{FeatureClassifier.__module__}.{FeatureClassifier.__qualname__}":
        raise VaelabError(
            f"{location.run_dir} is a {str(target).rsplit('.', 1)[-1]} run, not a feature "
            "classifier; train one with vaelab-train experiment=feature_classifier_mnist"
        )
    loaded = load_run(location, device, {"download": False, "num_workers": 0}, setup_data)
    return loaded.module.model, location.run_dir
