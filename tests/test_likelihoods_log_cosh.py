"""vaelab.likelihoods.log_cosh: Chen et al.'s (1/α)·log cosh(α·e) against its two limits, the
direct formula and its derivative tanh(α·e)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_lowers_the_validation_loss,
)
from vaelab.likelihoods.log_cosh import LogCoshLoss, log_cosh


def test_log_cosh_is_half_the_squared_error_for_small_errors():
    error = torch.tensor([1e-4, -3e-4, 2e-4], dtype=torch.float64)
    for alpha in (1.0, 10.0):
        # (1/α) log cosh(α e) = α e²/2 − α³ e⁴/12 + …: ½·MSE at α = 1
        expected = alpha * error.square() / 2
        assert torch.allclose(log_cosh(error, alpha), expected, rtol=1e-5, atol=0)


def test_log_cosh_is_the_absolute_error_less_log_2_for_large_errors():
    error = torch.tensor([30.0, -45.0, 80.0], dtype=torch.float64)
    for alpha in (1.0, 10.0):
        expected = error.abs() - math.log(2) / alpha
        assert torch.allclose(log_cosh(error, alpha), expected, rtol=0, atol=1e-12)


def test_log_cosh_equals_the_direct_formula_and_its_gradient_is_tanh():
    error = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    alpha = 10.0
    value = log_cosh(error, alpha)
    direct = torch.log(torch.cosh(alpha * error.detach())) / alpha
    assert torch.allclose(value.detach(), direct, rtol=1e-12, atol=1e-12)
    (gradient,) = torch.autograd.grad(value.sum(), error)
    assert torch.allclose(gradient, torch.tanh(alpha * error.detach()), atol=1e-12)


def test_the_loss_sums_over_pixels_and_log_prob_is_its_negative_per_sample():
    loss = LogCoshLoss(alpha=10.0)
    assert not loss.is_normalised
    x = torch.rand(3, 1, 4, 4)
    decoder_output = torch.randn(2, 3, 1, 4, 4)  # two samples of a batch of three
    picture = torch.sigmoid(decoder_output)
    expected = log_cosh(picture - x, 10.0).sum((-3, -2, -1))
    assert torch.allclose(loss.log_prob(decoder_output, x), -expected, atol=1e-6)
    assert loss.mean(decoder_output) == pytest.approx(picture)


@pytest.mark.slow
def test_a_short_mnist_run_lowers_the_log_cosh_loss(mnist_data_dir, tmp_path):
    one_step, trained = training_lowers_the_validation_loss(
        ["likelihood=log_cosh"],
        mnist_data_dir,
        tmp_path,
        train_batches=100,
        val_batches=2,
        logs_no_bound=True,
    )
    assert trained["val/recon"] < one_step["val/recon"]


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    resume_matches_straight_run(
        ["likelihood=log_cosh"], mnist_data_dir, tmp_path, metric="val/loss"
    )
