"""Likelihoods: log-probs against torch.distributions and closed forms, σ handling, configs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch.distributions import Bernoulli, ContinuousBernoulli, Laplace, Normal

from tests.conftest import compose_config
from vaelab.likelihoods import (
    BernoulliLikelihood,
    ContinuousBernoulliLikelihood,
    GaussianLikelihood,
    LaplaceLikelihood,
)

IMAGE = (2, 3, 4)  # (C, H, W): small, non-square, multi-channel
BATCH = 5
TOL = {"rtol": 1e-5, "atol": 1e-5}


def pixel_sum(values: torch.Tensor) -> torch.Tensor:
    return values.sum(dim=(-3, -2, -1))


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def grey(rng: torch.Generator) -> torch.Tensor:
    return torch.rand(BATCH, *IMAGE, generator=rng)


def decoder_output(rng: torch.Generator, parts: int = 1) -> torch.Tensor:
    channels, height, width = IMAGE
    return 2 * torch.randn(BATCH, parts * channels, height, width, generator=rng)


def test_bernoulli_matches_torch_and_bce(rng):
    logits, x = decoder_output(rng), grey(rng)
    expected = pixel_sum(Bernoulli(logits=logits, validate_args=False).log_prob(x))
    got = BernoulliLikelihood().log_prob(logits, x)
    torch.testing.assert_close(got, expected, **TOL)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    torch.testing.assert_close(got, -pixel_sum(bce), **TOL)
    assert got.shape == (BATCH,)


def test_bernoulli_fast_path_broadcasts_samples_like_the_distribution(rng):
    """The hot-path log_prob (no distribution objects) against the Independent distribution
    for L samples of logits [L, B, C, H, W] scored on images [B, C, H, W], binary and grey."""
    samples = 3
    logits = torch.stack([decoder_output(rng) for _ in range(samples)])
    likelihood = BernoulliLikelihood()
    for x in (grey(rng), torch.bernoulli(grey(rng), generator=rng)):
        got = likelihood.log_prob(logits, x)
        assert got.shape == (samples, BATCH)
        torch.testing.assert_close(got, likelihood.distribution(logits).log_prob(x), **TOL)
        torch.testing.assert_close(got[1], likelihood.log_prob(logits[1], x), **TOL)
    # a grid of codes [G, 1, C, H, W] against the batch: every pair, as quadrature uses it
    pairs = likelihood.log_prob(logits[:, :1], grey(rng))
    assert pairs.shape == (samples, BATCH)


def test_continuous_bernoulli_matches_torch_and_closed_form(rng):
    logits, x = decoder_output(rng), grey(rng)
    likelihood = ContinuousBernoulliLikelihood()
    got = likelihood.log_prob(logits, x)
    torch.testing.assert_close(
        got, pixel_sum(ContinuousBernoulli(logits=logits).log_prob(x)), **TOL
    )
    # eq. 7 of Loaiza-Ganem & Cunningham: log C(λ) + x log λ + (1 − x) log(1 − λ), float64
    lam = torch.sigmoid(logits.double())
    away = (lam - 0.5).abs() > 0.01  # C(λ) → 2 at λ = ½; torch Taylor-expands there
    log_norm = torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam))
    closed = log_norm + x * torch.log(lam) + (1 - x) * torch.log1p(-lam)
    per_pixel = ContinuousBernoulli(logits=logits).log_prob(x).double()
    torch.testing.assert_close(per_pixel[away], closed[away], rtol=1e-5, atol=1e-5)
    # its mean (what reconstructions show) is eq. 8, not λ
    mean = lam / (2 * lam - 1) + 1 / (2 * torch.atanh(1 - 2 * lam))
    got_mean = likelihood.mean(logits).double()
    torch.testing.assert_close(got_mean[away], mean[away], rtol=1e-5, atol=1e-5)


def test_continuous_bernoulli_is_a_density_on_the_unit_interval():
    """∫₀¹ p(x|λ) dx = 1, whereas the 'Bernoulli' of a grey level integrates to less."""
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)
    for logit in (-3.0, -0.7, 1.2, 4.0):
        logits = torch.full((1, 1, 1, 1), logit)
        densities = (
            torch.stack(
                [
                    ContinuousBernoulliLikelihood().log_prob(
                        logits, torch.full((1, 1, 1, 1), float(v))
                    )
                    for v in grid[::100]
                ]
            )
            .double()
            .exp()
            .squeeze()
        )
        cb_mass = torch.trapezoid(densities, grid[::100])
        bern = (
            torch.stack(
                [
                    BernoulliLikelihood().log_prob(logits, torch.full((1, 1, 1, 1), float(v)))
                    for v in grid[::100]
                ]
            )
            .double()
            .exp()
            .squeeze()
        )
        assert abs(cb_mass.item() - 1.0) < 2e-4
        assert torch.trapezoid(bern, grid[::100]).item() < 0.95


def test_gaussian_fixed_unit_variance_is_half_squared_error_plus_constant(rng):
    mu, x = decoder_output(rng), grey(rng)
    got = GaussianLikelihood(variance="fixed", scale=1.0).log_prob(mu, x)
    num_pixels = math.prod(IMAGE)
    expected = -0.5 * pixel_sum((x - mu) ** 2) - 0.5 * num_pixels * math.log(2 * math.pi)
    torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.parametrize("scale", [0.1, 0.5, 2.0])
def test_gaussian_fixed_scale_matches_torch(rng, scale):
    mu, x = decoder_output(rng), grey(rng)
    got = GaussianLikelihood(variance="fixed", scale=scale).log_prob(mu, x)
    torch.testing.assert_close(got, pixel_sum(Normal(mu, scale).log_prob(x)), **TOL)


@pytest.mark.parametrize("scale_output", ["log_scale", "log_var"])
def test_gaussian_learned_per_pixel_matches_torch_and_closed_form(rng, scale_output):
    out, x = decoder_output(rng, parts=2), grey(rng)
    likelihood = GaussianLikelihood(
        variance="learned_per_pixel",
        mean_activation="sigmoid",
        scale_output=scale_output,
        min_scale=0.01,
    )
    assert likelihood.params_per_channel == 2
    raw_mean, raw_scale = torch.chunk(out, 2, dim=1)
    log_sigma = raw_scale if scale_output == "log_scale" else 0.5 * raw_scale
    sigma = 0.01 + torch.exp(log_sigma)
    mean = torch.sigmoid(raw_mean)
    got = likelihood.log_prob(out, x)
    torch.testing.assert_close(got, pixel_sum(Normal(mean, sigma).log_prob(x)), **TOL)
    # seed 003's nll: ½((x − μ)/σ)² + log σ + ½ log 2π, summed over pixels
    seed_nll = pixel_sum(
        0.5 * ((x - mean) / sigma) ** 2 + torch.log(sigma) + 0.5 * math.log(2 * math.pi)
    )
    torch.testing.assert_close(got, -seed_nll, **TOL)
    torch.testing.assert_close(likelihood.mean(out), mean)


def test_gaussian_scale_floor_keeps_collapse_finite(rng):
    """A decoder that drives log σ to −∞ on a pixel it fits exactly meets the floor."""
    channels, height, width = IMAGE
    x = grey(rng)
    raw_mean = torch.logit(x.clamp(1e-4, 1 - 1e-4))
    raw_scale = torch.full_like(raw_mean, -1e4, requires_grad=True)
    likelihood = GaussianLikelihood(
        variance="learned_per_pixel", mean_activation="sigmoid", min_scale=0.05
    )
    got = likelihood.log_prob(torch.cat([raw_mean, raw_scale], dim=1), x)
    expected = pixel_sum(Normal(torch.sigmoid(raw_mean), 0.05).log_prob(x))
    torch.testing.assert_close(got, expected, **TOL)
    got.sum().backward()
    assert torch.isfinite(raw_scale.grad).all()
    # the bound this floor implies: log p ≤ D·(−log σ_min − ½ log 2π)
    ceiling = channels * height * width * (-math.log(0.05) - 0.5 * math.log(2 * math.pi))
    assert (got <= ceiling + 1e-3).all()


def test_gaussian_learned_global_scalar_and_per_pixel(rng):
    mu, x = decoder_output(rng), grey(rng)
    scalar = GaussianLikelihood(variance="learned_global", scale=0.3, min_scale=0.01)
    assert scalar.log_scale.shape == ()
    torch.testing.assert_close(
        scalar.log_prob(mu, x), pixel_sum(Normal(mu, 0.3).log_prob(x)), **TOL
    )
    with torch.no_grad():
        scalar.log_scale.fill_(math.log(0.7))
    torch.testing.assert_close(
        scalar.log_prob(mu, x), pixel_sum(Normal(mu, 0.71).log_prob(x)), **TOL
    )
    scalar.log_prob(mu, x).sum().backward()
    assert scalar.log_scale.grad is not None
    assert scalar.log_scale.grad.abs() > 0

    per_pixel = GaussianLikelihood(variance="learned_global", global_shape="per_pixel")
    with pytest.raises(RuntimeError, match="setup"):
        per_pixel.log_prob(mu, x)
    per_pixel.setup(IMAGE)
    assert per_pixel.log_scale.shape == IMAGE
    sigma = 0.01 + torch.rand(IMAGE, generator=rng)
    with torch.no_grad():
        per_pixel.log_scale.copy_(torch.log(sigma - 0.01))
    torch.testing.assert_close(
        per_pixel.log_prob(mu, x), pixel_sum(Normal(mu, sigma).log_prob(x)), **TOL
    )
    assert dict(per_pixel.named_parameters()).keys() == {"log_scale"}


@pytest.mark.parametrize("scale", [0.2, 1.0])
def test_laplace_matches_torch_and_l1(rng, scale):
    mu, x = decoder_output(rng), grey(rng)
    got = LaplaceLikelihood(variance="fixed", scale=scale).log_prob(mu, x)
    torch.testing.assert_close(got, pixel_sum(Laplace(mu, scale).log_prob(x)), **TOL)
    l1 = pixel_sum((x - mu).abs()) / scale + math.prod(IMAGE) * math.log(2 * scale)
    torch.testing.assert_close(got, -l1, **TOL)


def test_laplace_learned_per_pixel_matches_torch(rng):
    out, x = decoder_output(rng, parts=2), grey(rng)
    likelihood = LaplaceLikelihood(variance="learned_per_pixel", min_scale=0.02)
    loc, raw_scale = torch.chunk(out, 2, dim=1)
    expected = pixel_sum(Laplace(loc, 0.02 + torch.exp(raw_scale)).log_prob(x))
    torch.testing.assert_close(likelihood.log_prob(out, x), expected, **TOL)


def test_log_prob_broadcasts_over_sample_dimension(rng):
    """[L, B, …] decoder outputs score the same [B, …] images: the ELBO's batched samples."""
    x = grey(rng)
    out = torch.stack([decoder_output(rng, parts=2) for _ in range(3)])
    likelihood = GaussianLikelihood(variance="learned_per_pixel")
    got = likelihood.log_prob(out, x)
    assert got.shape == (3, BATCH)
    torch.testing.assert_close(got[1], likelihood.log_prob(out[1], x))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variance": "learned"},
        {"mean_activation": "relu"},
        {"scale": 0.0},
        {"min_scale": -1.0},
        {"variance": "learned_global", "scale": 0.01, "min_scale": 0.01},
        {"global_shape": "row"},
        {"scale_output": "std"},
    ],
)
def test_bad_options_raise_value_error(kwargs):
    with pytest.raises(ValueError, match="likelihood"):
        GaussianLikelihood(**kwargs)


@pytest.mark.parametrize(
    ("name", "cls", "variance", "channels_per_pixel"),
    [
        ("bernoulli", BernoulliLikelihood, None, 1),
        ("continuous_bernoulli", ContinuousBernoulliLikelihood, None, 1),
        ("gaussian", GaussianLikelihood, "fixed", 1),
        ("gaussian_fixed", GaussianLikelihood, "fixed", 1),
        ("gaussian_learned_global", GaussianLikelihood, "learned_global", 1),
        ("gaussian_learned_per_pixel", GaussianLikelihood, "learned_per_pixel", 2),
        ("laplace", LaplaceLikelihood, "fixed", 1),
    ],
)
def test_likelihood_configs_instantiate(tmp_path, name, cls, variance, channels_per_pixel):
    cfg = compose_config([f"likelihood={name}"], tmp_path)
    likelihood = instantiate(cfg.model.likelihood)
    assert type(likelihood) is cls
    assert likelihood.params_per_channel == channels_per_pixel
    if variance is not None:
        assert likelihood.variance == variance
    if name == "gaussian_learned_per_pixel":  # seed 003: sigmoid mean, learned log-std
        assert likelihood.mean_activation == "sigmoid"
        assert likelihood.scale_output == "log_scale"
    if name == "gaussian_fixed":
        assert likelihood.scale == 1.0


def test_gaussian_variance_key_selects_from_the_command_line(tmp_path):
    cfg = compose_config(
        [
            "likelihood=gaussian",
            "model.likelihood.variance=learned_per_pixel",
            "model.likelihood.min_scale=0.001",
        ],
        tmp_path,
    )
    likelihood = instantiate(cfg.model.likelihood)
    assert likelihood.params_per_channel == 2
    assert likelihood.min_scale == 0.001


def test_bernoulli_log_prob_equals_torch_distributions_and_bce():
    torch.manual_seed(0)
    logits = torch.randn(5, 1, 7, 6) * 3
    x_binary = torch.bernoulli(torch.rand(5, 1, 7, 6))
    x_grey = torch.rand(5, 1, 7, 6)
    lik = BernoulliLikelihood()
    expected = Bernoulli(logits=logits).log_prob(x_binary).sum(dim=(1, 2, 3))
    torch.testing.assert_close(lik.log_prob(logits, x_binary), expected, atol=1e-5, rtol=0)
    bce = F.binary_cross_entropy_with_logits(logits, x_grey, reduction="none").sum(dim=(1, 2, 3))
    torch.testing.assert_close(lik.log_prob(logits, x_grey), -bce, atol=1e-5, rtol=0)
    torch.testing.assert_close(lik.mean(logits), torch.sigmoid(logits))


def test_bernoulli_log_prob_is_stable_for_extreme_logits():
    logits = torch.tensor([[-200.0, 200.0]]).reshape(1, 1, 1, 2)
    x = torch.tensor([[1.0, 0.0]]).reshape(1, 1, 1, 2)
    # log σ(−200) + log(1 − σ(200)) = −400 exactly, no inf/nan
    torch.testing.assert_close(BernoulliLikelihood().log_prob(logits, x), torch.tensor([-400.0]))


def test_bernoulli_as_compiled_is_as_accurate_as_the_bce_kernel():
    """The form ``module.compile=true`` traces (log(1 + e^(−|l|)) instead of log1p) against
    float64 BCE-with-logits, extreme logits included: its largest error (relative, or absolute
    below 1 nat) is that of PyTorch's own float32 kernel, to 2⁻²³."""
    from vaelab.likelihoods.bernoulli import binary_cross_entropy_for_inductor

    logits = torch.cat([torch.linspace(-40, 40, 8001), torch.tensor([-1e-8, 0.0, 1e-8])])
    grey = torch.rand(logits.shape, generator=torch.Generator().manual_seed(0))
    for target in (torch.zeros_like(logits), torch.ones_like(logits), grey):
        exact = F.binary_cross_entropy_with_logits(
            logits.double(), target.double(), reduction="none"
        )
        scale = exact.abs().clamp_min(1)
        kernel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        compiled_form = binary_cross_entropy_for_inductor(logits, target)
        kernel_error = ((kernel.double() - exact).abs() / scale).max()
        error = ((compiled_form.double() - exact).abs() / scale).max()
        assert error <= kernel_error + 2**-23
