"""vaelab.evaluation.active_units (Burda et al. 2015): dimensions forced to the prior are counted
inactive; the threshold δ lives here only (the pictures' default, vaelab-eval's default and the
report's glossary follow it)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD, active_units
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.vae import VAE
from vaelab.nets.networks import EncoderDecoder
from vaelab.paths import CONFIG_DIR
from vaelab.plots.pictures import PictureSettings
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.report import GLOSSARY

IMAGE_SHAPE = (1, 4, 4)
LATENT_DIM = 6
PRIOR_DIMS = (1, 3, 4)  # encoder outputs μ = 0, log σ² = 0 here whatever x is


class PartlyCollapsedEncoder(nn.Module):
    """A random linear encoder whose rows for ``PRIOR_DIMS`` are zero: q(z_u|x) = N(0, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 2 * LATENT_DIM)
        with torch.no_grad():
            for dim in PRIOR_DIMS:
                for row in (dim, LATENT_DIM + dim):  # μ_u and log σ²_u
                    self.linear.weight[row].zero_()
                    self.linear.bias[row] = 0.0

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))


def partly_collapsed_vae() -> VAE:
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(LATENT_DIM, 16), nn.Unflatten(1, IMAGE_SHAPE))
    networks = EncoderDecoder(PartlyCollapsedEncoder(), decoder)
    return VAE(
        lambda **sizes: networks,
        LATENT_DIM,
        IMAGE_SHAPE,
        posterior=DiagonalGaussianPosterior(),
        likelihood=BernoulliLikelihood(),
    )


def test_dimensions_forced_to_the_prior_are_inactive():
    vae = partly_collapsed_vae()
    torch.manual_seed(1)
    batches = [
        (torch.rand(50, *IMAGE_SHAPE).round(), torch.zeros(50, dtype=torch.long)) for _ in range(4)
    ]
    result = evaluate_test_set(vae, batches, num_samples=8, chunk_size=8)
    summary = summarize(result)
    assert summary["active_units"] == LATENT_DIM - len(PRIOR_DIMS)
    activity = torch.tensor(summary["posterior_mean_variance"])
    assert (activity[list(PRIOR_DIMS)] == 0).all()
    # the forced dimensions cost nothing: KL(N(0, 1) || N(0, 1)) = 0
    kl_per_dim = torch.tensor(summary["kl_per_dim"])
    torch.testing.assert_close(
        kl_per_dim[list(PRIOR_DIMS)],
        torch.zeros(len(PRIOR_DIMS)),
        atol=1e-6,
        rtol=0,
        check_dtype=False,
    )
    assert (kl_per_dim[[d for d in range(LATENT_DIM) if d not in PRIOR_DIMS]] > 0).all()
    assert sum(summary["kl_per_dim"]) == pytest.approx(summary["kl"], rel=1e-6)


def test_threshold_is_on_the_variance_of_the_posterior_mean():
    torch.manual_seed(2)
    unit = torch.randn(100_000, 1)
    unit = (unit - unit.mean()) / unit.std()  # sample variance exactly 1
    # variances 0, 0.0025, ≈0.00998, ≈0.01002 and 1 around the threshold 0.01
    scales = torch.tensor([0.0, 0.05, 0.0999, 0.1001, 1.0])
    units = active_units(unit * scales)
    assert units.count == 2
    assert units.mask.tolist() == [False, False, False, True, True]
    torch.testing.assert_close(units.activity, (scales**2).double(), rtol=1e-4, atol=1e-12)


def test_too_few_points_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        active_units(torch.zeros(1, 3))


def test_defaults_are_the_one_threshold():
    assert PictureSettings().activity_threshold == ACTIVITY_THRESHOLD
    # vaelab-eval: null means ACTIVITY_THRESHOLD (no second copy of the number in conf/)
    assert OmegaConf.load(CONFIG_DIR / "eval.yaml").eval.active_unit_threshold is None
    assert f"> {ACTIVITY_THRESHOLD:g} " in GLOSSARY["eval/active_units"]
