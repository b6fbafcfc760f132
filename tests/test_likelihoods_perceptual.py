"""vaelab.likelihoods.perceptual and its feature networks (vaelab.evaluation.feature_networks):
Hou et al.'s layer distances against an independent computation, zero for identical images,
per image (a fixed permutation of the batch permutes the losses), and one-line refusals of a
missing network or layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tests.feature_classifier_run import write_feature_classifier_run
from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_lowers_the_validation_loss,
)
from vaelab.errors import VaelabError
from vaelab.evaluation.feature_networks import classifier_features, vgg_features
from vaelab.likelihoods.perceptual import FeaturePerceptualLoss


def small_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.ReLU(),
    )


def test_the_loss_is_half_the_mean_squared_feature_distance_summed_over_layers():
    network = small_network()
    loss = FeaturePerceptualLoss(network, layers=["1", "3"], weight=None)
    loss.setup((1, 8, 8))
    x, picture = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    first = lambda images: network[1](network[0](images))  # noqa: E731
    second = lambda images: network[3](network[2](first(images)))  # noqa: E731
    expected = sum(
        0.5 * (layer(picture) - layer(x)).square().flatten(1).mean(1) for layer in (first, second)
    )
    assert torch.allclose(loss.loss(picture, x), 64 * expected, atol=1e-5)  # weight = C·H·W


def test_identical_images_cost_nothing_and_the_loss_is_per_image():
    loss = FeaturePerceptualLoss(small_network(), layers=["1", "3"], weight=1.0)
    x, picture = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    assert torch.equal(loss.loss(x, x), torch.zeros(6))
    permutation = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = loss.loss(picture[permutation], x[permutation])
    assert torch.allclose(permuted, loss.loss(picture, x)[permutation], atol=1e-6)
    assert torch.all(permuted > 0)


def test_the_feature_network_stays_fixed_and_passes_gradients_to_the_decoder():
    loss = FeaturePerceptualLoss(small_network(), layers=["3"])
    loss.train()
    assert not loss.features.training
    assert all(not parameter.requires_grad for parameter in loss.parameters())
    decoder_output = torch.randn(2, 1, 8, 8, requires_grad=True)
    loss.log_prob(decoder_output, torch.rand(2, 1, 8, 8)).sum().backward()
    assert decoder_output.grad.abs().sum() > 0


def test_an_unknown_layer_is_refused_naming_the_layers():
    with pytest.raises(VaelabError) as refused:
        FeaturePerceptualLoss(small_network(), layers=["1", "7"])
    assert str(refused.value) == (
        "model.likelihood.layers: the feature network has no layer 7; its layers are 0, 1, 2, "
        "3, input"
    )


def test_a_classifier_trained_on_other_images_is_refused():
    network = small_network()
    network.input_shape = (1, 28, 28)
    with pytest.raises(VaelabError, match=r"takes images \(1, 28, 28\), the data are \(1, 8, 8\)"):
        FeaturePerceptualLoss(network, layers=["1"]).setup((1, 8, 8))


def test_missing_feature_networks_are_refused_in_one_line(tmp_path: Path):
    with pytest.raises(VaelabError) as refused:
        classifier_features(str(tmp_path / "feature_classifiers" / "mnist"))
    assert "train one with vaelab-train experiment=feature_classifier_mnist" in str(refused.value)
    with pytest.raises(VaelabError, match="nothing is downloaded"):
        vgg_features(str(tmp_path / "vgg19.pth"))
    (tmp_path / "vgg19.pth").write_bytes(b"not a state dict")
    with pytest.raises(VaelabError, match="is not a torchvision vgg19 state dict"):
        vgg_features(str(tmp_path / "vgg19.pth"))


def _classifier_option(log_dir: Path) -> list[str]:
    """likelihood=perceptual reading a (small, untrained) MNIST classifier run in ``log_dir``,
    the log dir of the runs whose dirs are in it (tests.conftest.compose_config)."""
    write_feature_classifier_run(log_dir / "feature_classifiers" / "mnist")
    return ["likelihood=perceptual"]


@pytest.mark.slow
def test_a_short_mnist_run_lowers_the_perceptual_loss(mnist_data_dir, tmp_path):
    option = _classifier_option(tmp_path)
    one_step, trained = training_lowers_the_validation_loss(
        option, mnist_data_dir, tmp_path, train_batches=100, val_batches=2, logs_no_bound=True
    )
    assert trained["val/recon"] < one_step["val/recon"]


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    option = _classifier_option(tmp_path)
    resume_matches_straight_run(option, mnist_data_dir, tmp_path, metric="val/loss")
