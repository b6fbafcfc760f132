"""Baselines: closed-form PCA / PPCA against independent linear algebra and Tipping & Bishop's
identities, the (denoising) autoencoder's losses, and runs through ``train`` on the digits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import multivariate_normal
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal

from vaelab.baselines.autoencoder import Autoencoder, AutoencoderModule, reconstruction_loss
from vaelab.baselines.denoising_autoencoder import DenoisingAutoencoderModule, corrupt
from vaelab.baselines.moments import DataMoments, principal_axes
from vaelab.baselines.pca import PrincipalComponents
from vaelab.baselines.point_mass import PointMass
from vaelab.baselines.ppca import ProbabilisticPCA
from vaelab.data.digits import DigitsDataModule
from vaelab.errors import VaelabError
from vaelab.nets.mlp import mlp
from vaelab.nets.pooled_cnn import pooled_cnn
from vaelab.train import train

SHAPE = (1, 2, 3)  # six "pixels"
DIM, K = 6, 2


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


def _fitted_ppca(x: torch.Tensor) -> ProbabilisticPCA:
    moments = _moments(x)
    model = ProbabilisticPCA(SHAPE, K).double()
    model.fit(moments.mean(), moments.covariance())
    return model


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
    mean_log_lik = model.log_marginal(x.reshape(-1, *SHAPE)).mean().item()
    assert mean_log_lik == pytest.approx(best, rel=1e-9)


def test_ppca_ml_beats_perturbed_parameters():
    x, _, _ = _ppca_data(3000)
    model = _fitted_ppca(x)
    images = x.reshape(-1, *SHAPE)
    best = model.log_marginal(images).mean()
    for scale_w, scale_noise in ((1.05, 1.0), (0.95, 1.0), (1.0, 1.1), (1.0, 0.9)):
        other = ProbabilisticPCA(SHAPE, K).double()
        other.load_state_dict(model.state_dict())
        with torch.no_grad():
            other.weight.mul_(scale_w)
            other.likelihood.variance.mul_(scale_noise)
        assert other.log_marginal(images).mean() < best


def test_ppca_log_likelihood_equals_dense_gaussian_and_the_exact_elbo():
    x, _, _ = _ppca_data(4000)
    model = _fitted_ppca(x)
    test = _ppca_data(50, seed=1)[0]
    covariance = model.weight @ model.weight.T + model.noise_variance * torch.eye(DIM)
    dense = MultivariateNormal(model.mean, covariance).log_prob(test)
    images = test.reshape(-1, *SHAPE)
    torch.testing.assert_close(model.log_marginal(images), dense)
    terms = model.elbo_terms(images)
    # the posterior is exact, so the ELBO is tight: recon + KL = −log p(x)
    torch.testing.assert_close(terms.bound, dense)
    torch.testing.assert_close(terms.recon + terms.kl, -dense)
    assert (terms.kl > 0).all()


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
    # E_q log p(x|z) by sampling, against the closed form (within 4 standard errors)
    z = q.sample((200_000,))[:, 0]
    pixels = Independent(Normal(z @ weight.T + model.mean, model.noise_variance.sqrt()), 1)
    samples = pixels.log_prob(point[0])
    recon = model.elbo_terms(point.reshape(1, *SHAPE)).recon[0]
    assert abs(-samples.mean() - recon) < 4 * samples.std() / math.sqrt(len(samples))


def test_ppca_refuses_data_without_residual_variance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, K, generator=gen, dtype=torch.float64) @ torch.randn(
        K, DIM, generator=gen, dtype=torch.float64
    )
    with pytest.raises(VaelabError, match="lower model.latent_dim"):
        _fitted_ppca(x)


# -- PCA ----------------------------------------------------------------------------------
def test_pca_components_are_the_leading_singular_vectors():
    x, _, _ = _ppca_data(3000)
    moments = _moments(x)
    pca = PrincipalComponents(SHAPE, K).double()
    pca.fit(moments.mean(), moments.covariance())
    centred = (x - x.mean(0)).numpy()
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    overlap = np.abs(vt[:K] @ pca.components.numpy())
    np.testing.assert_allclose(overlap, np.eye(K), atol=1e-8)
    np.testing.assert_allclose(pca.variances.numpy(), singular[:K] ** 2 / len(x), rtol=1e-9)
    # on the fitting data the mean squared error per point is Σ_{j>K} λ_j
    images = x.reshape(-1, *SHAPE)
    sse = ((pca.reconstruct(images) - images) ** 2).flatten(1).sum(1)
    assert sse.mean().item() == pytest.approx((singular[K:] ** 2).sum() / len(x), rel=1e-9)
    codes = pca.encode(images)
    assert isinstance(codes, PointMass)
    torch.testing.assert_close(codes.mean, (x - pca.mean) @ pca.components)
    assert torch.equal(codes.variance, torch.zeros_like(codes.mean))


# -- autoencoder ----------------------------------------------------------------------------
def test_reconstruction_losses_are_sums_over_pixels():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 5, 3, generator=gen) * 3
    x = torch.rand(4, 1, 5, 3, generator=gen)
    bce = reconstruction_loss("bce", logits, x)
    expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(bce, expected)
    bits = torch.bernoulli(x, generator=gen)
    torch.testing.assert_close(
        reconstruction_loss("bce", logits, bits),
        -Bernoulli(logits=logits).log_prob(bits).sum((1, 2, 3)),
    )
    mse = reconstruction_loss("mse", logits, x)
    torch.testing.assert_close(mse, ((torch.sigmoid(logits) - x) ** 2).sum((1, 2, 3)))


def _autoencoder_module(cls=AutoencoderModule, **kwargs) -> AutoencoderModule:
    def net(**shapes):
        return mlp(**shapes, hidden_dims=[16], activation="relu")

    return cls(
        net=net,
        latent_dim=2,
        input_shape=(1, 8, 8),
        optimizer=lambda params: torch.optim.Adam(params),
        **kwargs,
    )


def test_autoencoder_encodes_to_a_point_mass_and_decodes_logits():
    module = _autoencoder_module()
    x = torch.rand(5, 1, 8, 8)
    q = module.vae.encode(x)
    assert isinstance(q, PointMass) and q.mean.shape == (5, 2)
    assert torch.equal(q.rsample((3,)), q.mean.expand(3, 5, 2))
    torch.testing.assert_close(module.vae.reconstruct(x), torch.sigmoid(module(x)))
    assert module.vae.sample_images(7).shape == (7, 1, 8, 8)
    assert isinstance(module.vae, Autoencoder)


def test_denoising_loss_uses_fresh_noise_and_the_clean_target():
    module = _autoencoder_module(DenoisingAutoencoderModule, noise="gaussian", noise_std=0.3)
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(11)
    loss = module.training_loss(x)
    torch.manual_seed(11)
    noisy = corrupt(x, "gaussian", 0.3, 0.25)
    torch.testing.assert_close(loss, reconstruction_loss("bce", module(noisy), x))
    assert not torch.equal(module.training_loss(x), module.training_loss(x))
    values = module.evaluation_values(x)
    torch.testing.assert_close(values["recon"], reconstruction_loss("bce", module(x), x))


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


def test_denoising_autoencoder_rejects_bad_noise_settings():
    with pytest.raises(ValueError, match="model.noise must be one of"):
        _autoencoder_module(DenoisingAutoencoderModule, noise="salt")
    with pytest.raises(ValueError, match="mask_prob"):
        _autoencoder_module(DenoisingAutoencoderModule, noise="masking", mask_prob=1.5)
    with pytest.raises(ValueError, match="reconstruction_loss"):
        _autoencoder_module(reconstruction_loss="l1")


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
    run = Path(cfg.paths.output_dir)
    # one pass, however many epochs the trainer allows (default 50)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 0
    assert checkpoint["state_dict"]["fitted_on"].item() == len(train_x)
    assert json.loads((run / "metrics.json").read_text())["test/elbo"] == metrics["test/elbo"]


def test_pca_run_logs_the_test_squared_error(make_config):
    metrics = train(make_config("data=digits", "model=pca"))
    train_x, test_x = _digits_split("train"), _digits_split("test")
    _, vectors = np.linalg.eigh(np.cov(train_x.T, bias=True))
    components = vectors[:, ::-1][:, :2]
    centred = test_x - train_x.mean(0)
    residual = centred - centred @ components @ components.T
    expected = (residual**2).sum(1).mean()
    assert metrics["test/sse"] == pytest.approx(expected, rel=1e-4)
    assert "val/elbo" not in metrics


@pytest.mark.parametrize("model", ["autoencoder", "denoising_autoencoder"])
def test_autoencoder_run_beats_the_constant_predictor_and_checkpoints_on_val_loss(
    make_config, model
):
    cfg = make_config("data=digits", f"model={model}", "trainer.max_epochs=3")
    metrics = train(cfg)
    # predicting σ(0) = ½ for every pixel costs 64·log 2 nats per 8×8 image, whatever x is
    assert metrics["test/recon"] < 64 * math.log(2)
    assert math.isfinite(metrics["test/loss"]) and "test/elbo" not in metrics
    saved = sorted(p.name for p in (Path(cfg.paths.output_dir) / "checkpoints").iterdir())
    assert "last.ckpt" in saved and any(name.startswith("epoch_") for name in saved)
