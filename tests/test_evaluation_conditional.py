"""vaelab.evaluation.conditional, vaelab-eval's conditional metrics: disentanglement where the
data have factors, sample quality where they have labels and a feature space; ``enabled`` auto /
true / false."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from tests.ground_truth_toy import FactorPixels
from vaelab.errors import VaelabError
from vaelab.evaluation.conditional import EvaluationContext, conditional_metrics
from vaelab.evaluation.disentanglement.settings import SIZE_PRESETS
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.vae import VAE
from vaelab.nets.networks import EncoderDecoder
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior

FACTOR_SIZES = (2, 3)
NOISE_PIXELS = 1
PIXELS = len(FACTOR_SIZES) + NOISE_PIXELS
SMALL = {
    "num_train": 200,
    "num_eval": 100,
    "group_size": 16,
    "num_variance_estimate": 200,
    "seed": 0,
}


def factor_reading_vae() -> VAE:
    """A VAE whose encoder mean is the factor pixels themselves (σ = 1)."""
    latent_dim = len(FACTOR_SIZES)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, 2 * latent_dim))
    with torch.no_grad():
        encoder[1].weight.zero_()
        encoder[1].bias.zero_()
        encoder[1].weight[:latent_dim, :latent_dim] = torch.eye(latent_dim)
    decoder = nn.Sequential(nn.Linear(latent_dim, PIXELS), nn.Unflatten(1, (1, 1, PIXELS)))
    return VAE(
        lambda **_: EncoderDecoder(encoder, decoder),
        latent_dim,
        (1, 1, PIXELS),
        posterior=DiagonalGaussianPosterior(),
        likelihood=BernoulliLikelihood(),
    ).eval()


def _run(datamodule, settings: dict):
    model = factor_reading_vae()

    def context(options):
        return EvaluationContext(
            model=model,
            datamodule=datamodule,
            run_config=OmegaConf.create({}),
            device=torch.device("cpu"),
            settings=options,
            test_images=lambda: [],
        )

    return conditional_metrics(context, OmegaConf.create(settings))


def test_data_with_factors_get_the_disentanglement_metrics():
    data = FactorPixels(FACTOR_SIZES, NOISE_PIXELS)
    data.num_classes = None  # unlabelled: no sample quality
    results = _run(
        data,
        {
            "disentanglement": {"enabled": "auto", **SMALL},
            "sample_quality": {"enabled": "auto"},
        },
    )
    assert results.values["factor_vae_score"] == 1.0  # the codes are the factors
    assert results.values["beta_vae_score"] == 1.0
    assert results.values["mig"] > 0.5
    assert results.values["disentanglement_settings"]["num_train"] == SMALL["num_train"]
    assert "labels" in results.skipped["sample_quality"]


def test_sizes_quick_and_the_sizes_used_are_recorded():
    """``sizes=quick`` fills the sizes not given explicitly from the quick preset; the
    resolved sizes go to metrics.json's disentanglement_settings."""
    data = FactorPixels(FACTOR_SIZES, NOISE_PIXELS)
    data.num_classes = None
    explicit = {"num_train": 50, "num_eval": 50, "group_size": 4, "seed": 0}
    results = _run(
        data,
        {
            "disentanglement": {"enabled": "auto", "sizes": "quick", **explicit},
            "sample_quality": {"enabled": False},
        },
    )
    recorded = results.values["disentanglement_settings"]
    assert recorded["sizes"] == "quick"
    assert recorded["num_variance_estimate"] == SIZE_PRESETS["quick"]["num_variance_estimate"]
    assert recorded["num_train"] == explicit["num_train"]


class Unlabelled:
    num_classes = None


def test_enabled_true_where_a_metric_does_not_apply_is_an_error():
    with pytest.raises(VaelabError, match=r"eval.disentanglement.enabled=true but Unlabelled"):
        _run(Unlabelled(), {"disentanglement": {"enabled": True}})
    results = _run(Unlabelled(), {"disentanglement": {"enabled": False}})
    assert results.skipped["disentanglement"].startswith("disabled")
    assert not results.values
