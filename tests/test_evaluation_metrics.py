"""vaelab.evaluation.metrics: vaelab-eval's metrics and pictures for models built from every
likelihood and posterior group (untrained weights: what matters is that every family goes
through, with numbers that obey the estimator's inequalities)."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from tests.conftest import FAST, MODEL_OF_OPTION, compose_config
from vaelab.builders import build_module
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.paths import CONFIG_DIR
from vaelab.plots.pictures import PictureSettings, make_pictures
from vaelab.posteriors.structure import factorised_marginals

IMAGE_SHAPE = (1, 28, 28)
#: the normalised likelihoods; a reconstruction loss in p(x|z)'s place (is_normalised False:
#: MS-SSIM, LogCosh, perceptual) has no log p(x) and gets its own test below
LIKELIHOODS, LOSSES = [], []
for _path in sorted((CONFIG_DIR / "likelihood").glob("*.yaml")):
    _target = OmegaConf.load(_path).get("_target_")  # None: a variant of another option
    _normalised = _target is None or get_class(_target).is_normalised
    (LIKELIHOODS if _normalised else LOSSES).append(_path.stem)
#: the posteriors of the plain VAE (one that needs its own model and prior, such as a
#: categorical or a vMF posterior, is tested with it in its family's test file)
POSTERIORS = sorted(
    p.stem
    for p in (CONFIG_DIR / "posterior").glob("*.yaml")
    if ("posterior", p.stem) not in MODEL_OF_OPTION
)


def _vae(tmp_path, *overrides: str):
    cfg = compose_config([*FAST, *overrides], tmp_path / "run")
    torch.manual_seed(0)
    return build_module(cfg, IMAGE_SHAPE).eval().model


def _batches(num_batches: int = 2, size: int = 16):
    generator = torch.Generator().manual_seed(1)
    return [
        (
            torch.rand(size, *IMAGE_SHAPE, generator=generator),
            torch.randint(0, 10, (size,), generator=generator),
        )
        for _ in range(num_batches)
    ]


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_every_likelihood_gives_finite_consistent_metrics(likelihood, tmp_path):
    vae = _vae(tmp_path, f"likelihood={likelihood}")
    x = _batches(1)[0][0]
    torch.manual_seed(2)
    estimate = importance_weighted_log_likelihood(vae, x, num_samples=16, chunk_size=5)
    assert torch.isfinite(estimate.log_likelihood).all()
    assert (estimate.log_likelihood >= estimate.mean_log_weight - 1e-9).all()
    summary = summarize(evaluate_test_set(vae, _batches(), num_samples=16, chunk_size=8))
    assert summary["num_points"] == 32
    assert summary["likelihood_is_continuous"] == vae.likelihood.is_continuous
    assert summary["elbo"] == pytest.approx(-(summary["recon"] + summary["kl"]))
    assert summary["bits_per_dim"] == pytest.approx(summary["iw_nll"] / (784 * math.log(2)))


@pytest.mark.parametrize("likelihood", ["ms_ssim", "log_cosh"])
def test_a_reconstruction_loss_gets_its_loss_and_no_log_likelihood(likelihood, tmp_path):
    assert {"ms_ssim", "log_cosh", "perceptual"} <= set(LOSSES)
    vae = _vae(tmp_path, f"likelihood={likelihood}")
    assert not vae.likelihood_is_normalised
    result = evaluate_test_set(vae, _batches(), num_samples=16, chunk_size=8, elbo_samples=2)
    assert result.iw_log_likelihood is None
    summary = summarize(result)
    assert summary["loss"] == pytest.approx(summary["recon"] + summary["kl"])
    assert summary["recon"] > 0
    assert summary["kl"] == pytest.approx(float(result.kl.mean()))
    for name in ("elbo", "neg_elbo", "iw_nll", "bits_per_dim", "bits_per_dim_elbo", "iw_gap"):
        assert summary[name] is None, name
    assert summary["likelihood_is_normalised"] is False


@pytest.mark.parametrize(("posterior", "latent_dim"), [(p, d) for p in POSTERIORS for d in (2, 3)])
def test_every_posterior_gets_metrics_and_pictures(posterior, latent_dim, tmp_path):
    vae = _vae(tmp_path, f"posterior={posterior}", f"model.latent_dim={latent_dim}")
    result = evaluate_test_set(vae, _batches(), num_samples=8, chunk_size=8)
    summary = summarize(result)
    factorised = factorised_marginals(vae.encode(_batches(1)[0][0])) is not None
    assert (summary["kl_per_dim"] is not None) == factorised
    if factorised:
        assert sum(summary["kl_per_dim"]) == pytest.approx(summary["kl"], rel=1e-5)
    assert len(summary["posterior_mean_variance"]) == latent_dim
    x = _batches(1)[0][0]
    pictures = make_pictures(
        vae,
        result,
        x,
        tmp_path,
        datamodule=None,
        settings=PictureSettings(scatter_points=32),
        global_step=0,
    )
    drawn = set(pictures.grids) | set(pictures.figures)
    latent_picture = "latent_manifold" if latent_dim == 2 else "latent_traversals"
    assert {"reconstructions", "prior_samples", "latent_scatter", latent_picture} <= drawn
    assert {"learning_curves", "before_after"} <= set(pictures.skipped)  # no run files here
