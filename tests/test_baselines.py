"""Baselines: closed-form PCA / PPCA against independent linear algebra and Tipping & Bishop's
identities, the (denoising) autoencoder's losses, and runs through ``train`` on the digits."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from scipy.stats import multivariate_normal
from torch.distributions import Bernoulli, MultivariateNormal

from tests.conftest import FAST
from vaelab.baselines.autoencoder import Autoencoder
from vaelab.baselines.denoising_autoencoder import Corruption, DenoisingAutoencoder, corrupt
from vaelab.baselines.moments import DataMoments, principal_axes
from vaelab.baselines.pca import PrincipalComponents
from vaelab.baselines.point_mass import PointMass
from vaelab.baselines.ppca import ProbabilisticPCA
from vaelab.builders import build_module
from vaelab.data.digits import DigitsDataModule
from vaelab.errors import VaelabError
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.interface import MissingCapability
from vaelab.nets.mlp import mlp
from vaelab.nets.pooled_cnn import pooled_cnn
from vaelab.objectives.reconstruction import Reconstruction, reconstruction_loss
from vaelab.paths import PROJECT_ROOT
from vaelab.schedules.constant import ConstantBeta
from vaelab.train import train

SHAPE = (1, 2, 3)  # six "pixels"
DIM, K = 6, 2
UNIT_WEIGHT = ConstantBeta(1.0)


def _ppca_data(n: int, noise: float = 0.3, seed: int = 0):
    """x = Wz + μ + ε from a known PPCA model (float64)."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(DIM, K, generator=gen, dtype=torch.float64) * 2
    mean = torch.randn(DIM, generator=gen, dtype=torch.float64)
    z = torch.randn(n, K, generator=gen, dtype=torch.float64)
    x = z @ weight.T + mean + noise**0.5 * torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    return x, weight, mean


def _moments(x: torch.Tensor) -> DataMoments:
    moments = DataMoments(x.shape[1])
    for chunk in x.split(997):
        moments.update(chunk)
    return moments


def _fit(model, x: torch.Tensor):
    """Fit a closed-form model as the LightningModule does: batches to ``accumulate``, then
    ``finish_fit``."""
    model = model.double()
    for chunk in x.reshape(-1, *SHAPE).split(997):
        model.accumulate(chunk)
    model.finish_fit()
    return model


def _fitted_ppca(x: torch.Tensor) -> ProbabilisticPCA:
    return _fit(ProbabilisticPCA(latent_dim=K, input_shape=SHAPE), x)


def _evaluate(model, x: torch.Tensor):
    """The model's default objective on a batch, as validation and test run it."""
    objective = model.default_objective().eval()
    objective.setup(model, UNIT_WEIGHT, {})
    return objective(model, x, None, UNIT_WEIGHT, 0)


# -- moments and principal axes -----------------------------------------------------------
def test_moments_match_numpy_mean_and_ml_covariance():
    x, _, _ = _ppca_data(5000)
    moments = _moments(x)
    torch.testing.assert_close(moments.mean(), x.mean(0))
    np.testing.assert_allclose(
        moments.covariance().numpy(), np.cov(x.numpy().T, bias=True), rtol=1e-10, atol=1e-10
    )
    axes = principal_axes(moments.covariance())
    assert (axes.variances[:-1] >= axes.variances[1:]).all()
    np.testing.assert_allclose(
        axes.variances.numpy(),
        np.sort(np.linalg.eigvalsh(np.cov(x.numpy().T, bias=True)))[::-1],
        rtol=1e-9,
    )


# -- PPCA ---------------------------------------------------------------------------------
def test_ppca_recovers_the_generating_model():
    x, weight, mean = _ppca_data(50_000, noise=0.3)
    model = _fitted_ppca(x)
    assert model.fitted_on.item() == 50_000
    # σ² and WWᵀ are identifiable (W only up to a rotation)
    assert abs(model.noise_variance.item() - 0.3) < 0.3 * 0.03
    truth = weight @ weight.T
    fitted = model.weight @ model.weight.T
    assert torch.linalg.norm(fitted - truth) / torch.linalg.norm(truth) < 0.03
    assert torch.allclose(model.mean, mean, atol=0.05)


def test_ppca_ml_solution_is_tipping_bishop_eqs_7_8():
    x, _, _ = _ppca_data(3000)
    model = _fitted_ppca(x)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x.numpy().T, bias=True)))[::-1]
    sigma2 = eigenvalues[K:].mean()
    assert model.noise_variance.item() == pytest.approx(sigma2, rel=1e-9)
    # WᵀW = Λ_K − σ²I for R = I
    np.testing.assert_allclose(
        (model.weight.T @ model.weight).numpy(), np.diag(eigenvalues[:K] - sigma2), atol=1e-9
    )
    # the maximised mean log-likelihood: −½(D log 2π + Σ_{j≤K} log λ_j + (D−K) log σ² + D)
    best = -0.5 * (
        DIM * math.log(2 * math.pi)
        + np.log(eigenvalues[:K]).sum()
        + (DIM - K) * math.log(sigma2)
        + DIM
    )
    mean_log_lik = model.exact_log_likelihood(x.reshape(-1, *SHAPE)).mean().item()
    assert mean_log_lik == pytest.approx(best, rel=1e-9)


def test_ppca_ml_beats_perturbed_parameters():
    x, _, _ = _ppca_data(3000)
    model = _fitted_ppca(x)
    images = x.reshape(-1, *SHAPE)
    best = model.exact_log_likelihood(images).mean()
    for scale_w, scale_noise in ((1.05, 1.0), (0.95, 1.0), (1.0, 1.1), (1.0, 0.9)):
        other = ProbabilisticPCA(latent_dim=K, input_shape=SHAPE).double()
        other.load_state_dict(model.state_dict())
        with torch.no_grad():
            other.weight.mul_(scale_w)
            other.likelihood.variance.mul_(scale_noise)
        assert other.exact_log_likelihood(images).mean() < best


def test_ppca_log_likelihood_equals_dense_gaussian_and_the_exact_elbo():
    x, _, _ = _ppca_data(4000)
    model = _fitted_ppca(x)
    test = _ppca_data(50, seed=1)[0]
    covariance = model.weight @ model.weight.T + model.noise_variance * torch.eye(DIM)
    dense = MultivariateNormal(model.mean, covariance).log_prob(test)
    images = test.reshape(-1, *SHAPE)
    torch.testing.assert_close(model.exact_log_likelihood(images), dense)
    terms = model.elbo_terms(images)
    # the posterior is exact, so the ELBO is tight: recon + KL = −log p(x)
    torch.testing.assert_close(terms.elbo, dense)
    torch.testing.assert_close(terms.recon + terms.kl, -dense)
    assert (terms.kl > 0).all()
    # what validation and test log: log p(x) under its own name, the ELBO under "elbo"
    out = _evaluate(model, images)
    torch.testing.assert_close(out.terms["log_likelihood"], dense)
    torch.testing.assert_close(out.bound, dense)
    torch.testing.assert_close(out.loss, -dense)
    torch.testing.assert_close(out.terms["recon"] + out.terms["kl"], -dense)
    assert model.default_objective().logged_names() == ("elbo", "recon", "kl", "log_likelihood")


def test_ppca_every_importance_weight_is_the_exact_log_likelihood():
    """With the exact posterior, log p(x|z) + log p(z) − log q(z|x) = log p(x) for every z:
    the interface's log_weights (behind the MC ELBO, IWAE and the IW-NLL) must show it."""
    x, _, _ = _ppca_data(4000)
    model = _fitted_ppca(x)
    images = _ppca_data(20, seed=3)[0].reshape(-1, *SHAPE)
    weights = model.log_weights(images, num_samples=7)
    assert weights.shape == (7, 20)
    exact = model.exact_log_likelihood(images)
    torch.testing.assert_close(weights, exact.expand(7, -1).to(weights), rtol=0, atol=1e-4)
    assert model.prior.sample(3).shape == (3, K)
    assert model.sample(5).shape == (5, *SHAPE)


def test_ppca_posterior_is_bayes_rule_and_recon_matches_monte_carlo():
    x, _, _ = _ppca_data(4000)
    model = _fitted_ppca(x)
    point = _ppca_data(1, seed=2)[0]
    q = model.encode(point.reshape(1, *SHAPE))
    # joint Gaussian of (z, x): p(z|x) = N(Wᵀ C⁻¹ (x − μ), I − Wᵀ C⁻¹ W)
    weight = model.weight
    c_inv = torch.linalg.inv(weight @ weight.T + model.noise_variance * torch.eye(DIM))
    torch.testing.assert_close(q.mean[0], weight.T @ c_inv @ (point[0] - model.mean))
    torch.testing.assert_close(q.covariance_matrix[0], torch.eye(K) - weight.T @ c_inv @ weight)
    # E_q log p(x|z) by sampling through decode, against the closed form (4 standard errors)
    z = q.sample((200_000,))[:, 0]
    samples = model.decode(z).log_prob(point.reshape(1, *SHAPE)).double()
    recon = model.elbo_terms(point.reshape(1, *SHAPE)).recon[0]
    assert abs(-samples.mean() - recon) < 4 * samples.std() / math.sqrt(len(samples))


def test_ppca_refuses_data_without_residual_variance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, K, generator=gen, dtype=torch.float64) @ torch.randn(
        K, DIM, generator=gen, dtype=torch.float64
    )
    with pytest.raises(VaelabError, match=r"lower model\.latent_dim"):
        _fitted_ppca(x)


def test_unfitted_closed_form_models_refuse_to_be_evaluated():
    images = _ppca_data(4)[0].reshape(-1, *SHAPE).float()
    for model in (
        ProbabilisticPCA(latent_dim=K, input_shape=SHAPE),
        PrincipalComponents(latent_dim=K, input_shape=SHAPE),
    ):
        with pytest.raises(VaelabError, match="has not been fitted: train it first"):
            _evaluate(model, images)
    with pytest.raises(VaelabError, match="has not been fitted"):
        ProbabilisticPCA(latent_dim=K, input_shape=SHAPE).exact_log_likelihood(images)
    with pytest.raises(VaelabError, match=r"latent_dim must lie in 1\.\.5"):
        PrincipalComponents(latent_dim=6, input_shape=SHAPE)


# -- PCA ----------------------------------------------------------------------------------
def test_pca_components_are_the_leading_singular_vectors():
    x, _, _ = _ppca_data(3000)
    pca = _fit(PrincipalComponents(latent_dim=K, input_shape=SHAPE), x)
    centred = (x - x.mean(0)).numpy()
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    overlap = np.abs(vt[:K] @ pca.components.numpy())
    np.testing.assert_allclose(overlap, np.eye(K), atol=1e-8)
    np.testing.assert_allclose(pca.variances.numpy(), singular[:K] ** 2 / len(x), rtol=1e-9)
    # on the fitting data the mean squared error per point is Σ_{j>K} λ_j
    images = x.reshape(-1, *SHAPE)
    discarded = (singular[K:] ** 2).sum() / len(x)
    sse = ((pca.reconstruct(images) - images) ** 2).flatten(1).sum(1)
    assert sse.mean().item() == pytest.approx(discarded, rel=1e-9)
    out = _evaluate(pca, images)
    torch.testing.assert_close(out.terms["sse"], sse)
    torch.testing.assert_close(out.loss, sse)
    assert out.bound is None
    assert pca.default_objective().logged_names() == ("sse",)
    codes = pca.encode(images)
    assert isinstance(codes, PointMass)
    torch.testing.assert_close(codes.mean, (x - pca.mean) @ pca.components)
    assert torch.equal(codes.variance, torch.zeros_like(codes.mean))
    # decode is a distribution whose mean is the projection x̂ = μ + W z
    torch.testing.assert_close(
        pca.decode(codes.mean).mean.flatten(1), pca.mean + codes.mean @ pca.components.T
    )
    with pytest.raises(MissingCapability, match="no prior"):
        pca.prior  # noqa: B018
    assert pca.sample(4).shape == (4, *SHAPE)


# -- autoencoder ----------------------------------------------------------------------------
def test_reconstruction_losses_are_sums_over_pixels():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 5, 3, generator=gen) * 3
    observation = BernoulliLikelihood().observation(logits)
    x = torch.rand(4, 1, 5, 3, generator=gen)
    bce = reconstruction_loss("bce", observation, x)
    expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(bce, expected)
    bits = torch.bernoulli(x, generator=gen)
    torch.testing.assert_close(
        reconstruction_loss("bce", observation, bits),
        -Bernoulli(logits=logits).log_prob(bits).sum((1, 2, 3)),
    )
    mse = reconstruction_loss("mse", observation, x)
    torch.testing.assert_close(mse, ((torch.sigmoid(logits) - x) ** 2).sum((1, 2, 3)))


def _net(**shapes):
    return mlp(**shapes, hidden_dims=[16], activation="relu")


def _autoencoder(cls=Autoencoder, **kwargs) -> Autoencoder:
    return cls(net=_net, latent_dim=2, input_shape=(1, 8, 8), **kwargs)


def test_autoencoder_encodes_to_a_point_mass_and_decodes_a_bernoulli():
    model = _autoencoder()
    x = torch.rand(5, 1, 8, 8)
    q = model.encode(x)
    assert isinstance(q, PointMass)
    assert q.mean.shape == (5, 2)
    assert torch.equal(q.rsample((3,)), q.mean.expand(3, 5, 2))
    logits = model.decoder(model.encoder(x))
    torch.testing.assert_close(model.decode(q.mean).mean, torch.sigmoid(logits))
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(logits))
    assert model.sample(7).shape == (7, 1, 8, 8)
    with pytest.raises(MissingCapability, match="no prior"):
        model.prior  # noqa: B018
    with pytest.raises(MissingCapability, match="no prior"):
        model.log_weights(x, num_samples=2)
    # the objective: the loss on clean inputs, logged as recon, no bound
    out = _evaluate(model, x)
    expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.terms["recon"], expected)
    assert out.bound is None
    assert model.default_objective().logged_names() == ("recon",)


def test_denoising_loss_uses_fresh_noise_and_the_clean_target():
    model = _autoencoder(DenoisingAutoencoder, noise="gaussian", noise_std=0.3)
    objective = model.default_objective()
    x = torch.rand(6, 1, 8, 8)

    def bce_of(inputs):
        return reconstruction_loss("bce", model.decode(model.encode(inputs).mean), x)

    torch.manual_seed(11)
    loss = objective(model, x, None, UNIT_WEIGHT, 0).loss
    torch.manual_seed(11)
    noisy = corrupt(x, "gaussian", 0.3, 0.25)
    torch.testing.assert_close(loss, bce_of(noisy))
    first, second = (objective(model, x, None, UNIT_WEIGHT, 0).loss for _ in range(2))
    assert not torch.equal(first, second)
    # training skips the clean pass; evaluation reports it as recon
    assert objective.train()(model, x, None, UNIT_WEIGHT, 0).terms == {}
    evaluated = objective.eval()(model, x, None, UNIT_WEIGHT, 0)
    torch.testing.assert_close(evaluated.terms["recon"], bce_of(x))
    # the corruption is the objective's: encode and reconstruct see the clean input
    torch.testing.assert_close(model.reconstruct(x), model.decode(model.encode(x).mean).mean)


def test_corruptions_have_the_stated_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 28, 28, generator=gen)
    n = x.numel()
    noisy = corrupt(x, "gaussian", 0.5, 0.25, generator=gen)
    added = noisy - x
    assert abs(added.mean()) < 4 * 0.5 / math.sqrt(n)
    assert abs(added.std() - 0.5) < 0.005
    masked = corrupt(x, "masking", 0.5, 0.25, generator=gen)
    dropped = (masked == 0) & (x != 0)
    assert abs(dropped.float().mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    kept = masked != 0
    assert torch.equal(masked[kept], x[kept])
    torch.manual_seed(3)
    by_object = Corruption("masking", mask_prob=0.25)(x)
    torch.manual_seed(3)
    assert torch.equal(by_object, corrupt(x, "masking", 0.5, 0.25))


def test_autoencoders_reject_bad_settings():
    with pytest.raises(VaelabError, match=r"model\.noise=salt must be one of gaussian, masking"):
        _autoencoder(DenoisingAutoencoder, noise="salt")
    with pytest.raises(VaelabError, match="mask_prob"):
        _autoencoder(DenoisingAutoencoder, noise="masking", mask_prob=1.5)
    with pytest.raises(VaelabError, match=r"model\.reconstruction_loss=l1 must be one of bce, mse"):
        _autoencoder(reconstruction_loss="l1")
    with pytest.raises(VaelabError, match=r"model\.reconstruction_loss=l1 must be one of bce, mse"):
        Reconstruction("l1")


# -- seed 003's CNN ---------------------------------------------------------------------------
def test_pooled_cnn_reproduces_seed_003_parameter_counts_and_shapes():
    nets = pooled_cnn((1, 28, 28), latent_dim=2, encoder_out_features=2, decoder_out_channels=1)
    # Keras summaries in seed 003: encoder 36,586 parameters, decoder 37,089
    assert sum(p.numel() for p in nets.encoder.parameters()) == 36_586
    assert sum(p.numel() for p in nets.decoder.parameters()) == 37_089
    for shape in ((1, 28, 28), (1, 32, 32), (1, 28, 20), (3, 32, 32)):
        nets = pooled_cnn(
            shape, latent_dim=2, encoder_out_features=4, decoder_out_channels=2 * shape[0]
        )
        codes = nets.encoder(torch.rand(3, *shape))
        assert codes.shape == (3, 4)
        assert nets.decoder(codes[:, :2]).shape == (3, 2 * shape[0], *shape[1:])
    with pytest.raises(ValueError, match="too small"):
        pooled_cnn((1, 8, 8), latent_dim=2, encoder_out_features=2, decoder_out_channels=1)


# -- groups a baseline cannot use are refused by name -------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model=pca", "posterior=full_covariance"],
            "model=pca has no posterior: remove posterior=full_covariance",
        ),
        (
            ["model=autoencoder", "beta=capacity"],
            "model=autoencoder has no beta: remove beta=capacity",
        ),
        (["model=ppca", "optimizer=sgd"], "model=ppca has no optimizer: remove optimizer=sgd"),
        (
            ["model=denoising_autoencoder", "model.prior=vamp"],
            "model=denoising_autoencoder has no prior: remove model.prior=vamp",
        ),
    ],
)
def test_a_group_the_baseline_cannot_use_is_refused(make_config, overrides, message):
    cfg = make_config("data=digits", *overrides)
    with pytest.raises(VaelabError, match=message):
        build_module(cfg, (1, 8, 8))


def test_baselines_build_without_the_default_vae_groups(make_config):
    """The composed defaults (posterior, likelihood, prior, objective, β, optimizer) are left
    out of a baseline that does not use them; the autoencoder keeps its optimizer."""
    for model, optimised in (("pca", False), ("ppca", False), ("autoencoder", True)):
        module = build_module(make_config("data=digits", f"model={model}"), (1, 8, 8))
        assert (module.configure_optimizers() is not None) == optimised
        assert module.automatic_optimization == optimised


@pytest.mark.slow  # a subprocess: importing torch and Lightning alone takes ~10 s here
def test_cli_refuses_a_posterior_for_pca():
    posterior = "posterior=full_covariance"
    result = subprocess.run(
        [sys.executable, "-m", "vaelab.train", *FAST, "data=digits", "model=pca", posterior],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert errors == [
        "vaelab: error: model=pca has no posterior: remove posterior=full_covariance"
    ], result.stderr[-2000:]


# -- through vaelab-train's train() on the digits ---------------------------------------------
def _digits_split(split: str) -> np.ndarray:
    dm = DigitsDataModule("unused", batch_size=100, val_size=180, test_size=180)
    dm.setup("fit")
    return dm.splits[split].images.flatten(1).double().numpy() / 255


def test_ppca_run_logs_the_exact_test_log_likelihood(make_config):
    cfg = make_config("data=digits", "model=ppca", "model.latent_dim=3")
    metrics = train(cfg)
    train_x, test_x = _digits_split("train"), _digits_split("test")
    eigenvalues, vectors = np.linalg.eigh(np.cov(train_x.T, bias=True))
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    sigma2 = eigenvalues[3:].mean()
    weight = vectors[:, :3] * np.sqrt(eigenvalues[:3] - sigma2)
    covariance = weight @ weight.T + sigma2 * np.eye(train_x.shape[1])
    expected = multivariate_normal(train_x.mean(0), covariance).logpdf(test_x).mean()
    assert metrics["test/log_likelihood"] == pytest.approx(expected, rel=1e-4)
    assert metrics["test/elbo"] == pytest.approx(expected, rel=1e-4)
    assert metrics["test/loss"] == pytest.approx(-expected, rel=1e-4)
    # validation ran on the fitted model (the fit comes before the epoch's validation)
    val_x = _digits_split("val")
    val_expected = multivariate_normal(train_x.mean(0), covariance).logpdf(val_x).mean()
    assert metrics["val/log_likelihood"] == pytest.approx(val_expected, rel=1e-4)
    run = Path(cfg.paths.output_dir)
    # one pass, however many epochs the trainer allows (default 50)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert checkpoint["global_step"] == 0
    assert checkpoint["state_dict"]["model.fitted_on"].item() == len(train_x)
    assert json.loads((run / "metrics.json").read_text())["test/elbo"] == metrics["test/elbo"]


def test_pca_run_logs_the_test_squared_error(make_config):
    cfg = make_config("data=digits", "model=pca")
    metrics = train(cfg)
    train_x, test_x = _digits_split("train"), _digits_split("test")
    _, vectors = np.linalg.eigh(np.cov(train_x.T, bias=True))
    components = vectors[:, ::-1][:, :2]
    centred = test_x - train_x.mean(0)
    residual = centred - centred @ components @ components.T
    expected = (residual**2).sum(1).mean()
    assert metrics["test/sse"] == pytest.approx(expected, rel=1e-4)
    assert metrics["test/loss"] == pytest.approx(expected, rel=1e-4)
    assert "val/elbo" not in metrics
    # no optimiser step is taken, so the one checkpoint is last.ckpt, holding the fit
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)["state_dict"]
    assert state["model.fitted_on"].item() == len(train_x)
    overlap = np.abs(components.T @ state["model.components"].double().numpy())
    np.testing.assert_allclose(overlap, np.eye(2), atol=1e-4)


def test_testing_an_unfitted_closed_form_model_is_a_clear_error(make_config):
    cfg = make_config("data=digits", "model=pca")
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule.dims)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    with pytest.raises(VaelabError, match="PrincipalComponents has not been fitted"):
        trainer.test(module, datamodule=datamodule)


@pytest.mark.parametrize("model", ["autoencoder", "denoising_autoencoder"])
def test_autoencoder_run_beats_the_constant_predictor_and_checkpoints_on_val_loss(
    make_config, model
):
    cfg = make_config("data=digits", f"model={model}", "trainer.max_epochs=3")
    metrics = train(cfg)
    # predicting σ(0) = ½ for every pixel costs 64·log 2 nats per 8×8 image, whatever x is
    assert metrics["test/recon"] < 64 * math.log(2)
    assert math.isfinite(metrics["test/loss"])
    assert "test/elbo" not in metrics
    if model == "autoencoder":
        assert metrics["test/loss"] == pytest.approx(metrics["test/recon"])
    else:  # the denoising loss of noisy inputs is worse than the clean reconstruction
        assert metrics["test/loss"] > metrics["test/recon"]
    saved = sorted(p.name for p in (Path(cfg.paths.output_dir) / "checkpoints").iterdir())
    assert "last.ckpt" in saved
    assert any(name.startswith("epoch_") for name in saved)
