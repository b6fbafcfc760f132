"""vaelab.models.cvae, the conditional VAE: without the label it is the VAE (same numbers);
labels reach every path (objectives, IW-NLL, sample grids); data without class labels is
refused; a short MNIST run's samples are recognised as their class by a classifier."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.errors import VaelabError
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.class_samples import accuracy, class_sample_accuracy, train_classifier
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.models.cvae import ConditionalVAE
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO
from vaelab.plots.grids import class_conditional_sample_grid
from vaelab.priors.vamp import VampPrior
from vaelab.schedules import ConstantBeta
from vaelab.train import train

SHAPE = (1, 4, 4)
PIXELS = math.prod(SHAPE)
CLASSES = 3
LATENT = 2


def net(**kwargs):
    return mlp(hidden_dims=[8], activation="tanh", **kwargs)


def batch(num: int = 6) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(num, *SHAPE, generator=generator) > 0.5).float()
    return x, torch.arange(num) % CLASSES


def cvae_without_the_label(vae: VAE) -> ConditionalVAE:
    """A CVAE with the VAE's weights and zero weights on every label input."""
    model = ConditionalVAE(net, LATENT, SHAPE, num_classes=CLASSES)
    first_encoder, first_decoder = model.encoder[1], model.decoder.net[0]
    with torch.no_grad():
        for name, parameter in vae.named_parameters():
            target = model.get_parameter(name)
            if parameter.shape == target.shape:
                target.copy_(parameter)
        first_encoder.weight.zero_()
        first_encoder.weight[:, :PIXELS] = vae.encoder[1].weight
        first_decoder.weight.zero_()
        first_decoder.weight[:, :LATENT] = vae.decoder.net[0].weight
    return model


def test_with_the_label_removed_the_cvae_is_the_vae():
    torch.manual_seed(0)
    vae = VAE(net, LATENT, SHAPE)
    cvae = cvae_without_the_label(vae)
    x, y = batch()
    torch.manual_seed(1)
    expected = vae.log_weights(x, None, num_samples=5)
    torch.manual_seed(1)
    torch.testing.assert_close(cvae.log_weights(x, y, num_samples=5), expected)
    torch.manual_seed(1)
    torch.testing.assert_close(cvae.log_weights(x, (y + 1) % CLASSES, 5), expected)
    unit = ConstantBeta(1.0)
    elbo = ELBO()
    elbo.setup(cvae, unit, {})
    assert elbo.kl_estimator == "analytic"
    torch.manual_seed(2)
    expected_elbo = elbo(vae, x, None, unit, 0).bound
    torch.manual_seed(2)
    torch.testing.assert_close(elbo(cvae, x, y, unit, 0).bound, expected_elbo)
    torch.testing.assert_close(cvae.reconstruct(x, y), vae.reconstruct(x))


def test_the_conditional_iw_estimate_uses_the_labels():
    """log p(x|y) through eval's estimator equals the model's own log-mean-exp of log w(x, y),
    and differs for other labels once the decoder reads them."""
    torch.manual_seed(0)
    model = ConditionalVAE(net, LATENT, SHAPE, num_classes=CLASSES)
    x, y = batch()
    torch.manual_seed(3)
    estimate = importance_weighted_log_likelihood(model, x, 40, 10, y).log_likelihood
    torch.manual_seed(3)
    chunks = torch.cat([model.log_weights(x, y, 10) for _ in range(4)])
    expected = torch.logsumexp(chunks.double(), 0) - math.log(40)
    torch.testing.assert_close(estimate, expected, atol=1e-5, rtol=0)
    torch.manual_seed(3)
    other = importance_weighted_log_likelihood(model, x, 40, 10, (y + 1) % CLASSES)
    assert (other.log_likelihood - estimate).abs().max() > 1e-3


def test_class_grid_has_one_row_per_class_decoded_with_its_label():
    """A decoder that draws class k as brightness k/(K − 1) (zero weights, label biases):
    the grid's rows are the classes in order."""
    model = ConditionalVAE(net, LATENT, SHAPE, num_classes=CLASSES)
    decoder = model.decoder.net
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.zero_()
        decoder[0].weight[0, LATENT:] = torch.linspace(-6, 6, CLASSES)  # class → hidden unit
        decoder[-1].weight[:, 0] = 2.0  # hidden unit → every pixel's logit
    rows = class_conditional_sample_grid(model, per_class=4, class_names=["a", "b", "c"])
    assert rows.shape[0] == 3
    row_height = rows.shape[1] // CLASSES
    brightness = [rows[:, k * row_height : (k + 1) * row_height, -20:].mean() for k in range(3)]
    assert brightness[0] < brightness[1] < brightness[2]


def test_unusable_labels_and_data_are_refused(tmp_path):
    model = ConditionalVAE(net, LATENT, SHAPE, num_classes=CLASSES)
    x, y = batch()
    with pytest.raises(VaelabError, match="pass y"):
        model.encode(x)
    with pytest.raises(VaelabError, match="unlabelled"):
        model.encode(x, torch.full_like(y, -1))
    with pytest.raises(VaelabError, match="factors of variation"):
        model.encode(x, torch.zeros(len(x), 5, dtype=torch.long))
    with pytest.raises(VaelabError, match="needs class labels"):
        ConditionalVAE(net, LATENT, SHAPE, num_classes=None)
    vamp = ConditionalVAE(net, LATENT, SHAPE, num_classes=CLASSES, prior=VampPrior(4))
    with pytest.raises(VaelabError, match="prior=standard_normal"):
        vamp.prior.distribution()
    cfg = compose_config(["data=digits", "model=cvae_mlp"], tmp_path)
    with pytest.raises(VaelabError, match=r"conditions on class labels, but data=.* has none"):
        build_module(cfg, (1, 8, 8), {"num_classes": None})
    with pytest.raises(VaelabError, match="data_info"):
        build_module(cfg, (1, 8, 8))
    module = build_module(cfg, (1, 8, 8), {"num_classes": 10})
    assert module.model.num_classes == 10


@pytest.mark.slow
def test_cvae_samples_are_recognised_as_their_class(mnist_data_dir, tmp_path):
    """A short CVAE run on MNIST: ≥ 90 % of its samples of each class are classified as that
    class by an MLP trained on the real digits (chance: 10 %)."""
    cfg = compose_config(
        [
            *(o for o in FAST if not o.startswith("callbacks.")),
            f"paths.data_dir={mnist_data_dir}",
            "data=binarized_mnist",
            "model=cvae_mlp",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=300",
            "trainer.limit_val_batches=5",
            "test=false",
            "callbacks=none",
        ],
        tmp_path,
    )
    train(cfg)
    run = load_run(locate_checkpoint(tmp_path), torch.device("cpu"), {"download": False})
    run.datamodule.setup("fit")
    train_split, test_split = run.datamodule.splits["train"], run.datamodule.splits["test"]
    classifier = train_classifier(train_split.images.float() / PIXEL_MAX, train_split.labels, 10)
    assert accuracy(classifier, test_split.images.float() / PIXEL_MAX, test_split.labels) > 0.95
    scored = class_sample_accuracy(run.module.model, classifier, samples_per_class=100)
    print(f"class-sample accuracy {scored.accuracy:.3f}, per class {scored.per_class}")
    assert scored.accuracy >= 0.9, scored.per_class
