"""vaelab.likelihoods.ms_ssim: the loss is weight·(1 − torchmetrics' MS-SSIM) with the scales
that fit small images, 0 for identical images, and refuses a window too wide for the image."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_lowers_the_validation_loss,
)
from vaelab.errors import VaelabError
from vaelab.likelihoods.ms_ssim import (
    WANG_BETAS,
    MSSSIMLoss,
    betas_for,
    gaussian_window,
    scales_that_fit,
)


def test_scales_that_fit_small_images():
    assert gaussian_window(1.5) == 11  # Wang et al.'s σ: an 11-pixel window
    assert scales_that_fit(28, 1.5) == 2  # MNIST: 28 and 14 pixels
    assert scales_that_fit(256, 1.5) == 5  # Wang et al.'s own five scales
    assert scales_that_fit(8, 1.5) == 0  # digits need a narrower window
    assert scales_that_fit(8, 0.5) == 2
    assert betas_for(5) == pytest.approx(WANG_BETAS, rel=1e-3)  # theirs sum to 1.0001
    assert sum(betas_for(2)) == pytest.approx(1.0)
    assert betas_for(2)[1] / betas_for(2)[0] == pytest.approx(WANG_BETAS[1] / WANG_BETAS[0])


def test_the_loss_is_weight_times_one_minus_torchmetrics_ms_ssim():
    torch.manual_seed(0)
    loss = MSSSIMLoss(weight=None)
    loss.setup((1, 28, 28))
    x = torch.rand(5, 1, 28, 28)
    picture = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    reference = multiscale_structural_similarity_index_measure(
        picture,
        x,
        sigma=1.5,
        kernel_size=11,
        betas=betas_for(2),
        data_range=1.0,
        normalize="simple",
        reduction="none",
    )
    assert torch.allclose(loss.loss(picture, x), 784 * (1 - reference), atol=1e-4)
    assert torch.all(loss.loss(picture, x) > 0)


def test_identical_images_have_ms_ssim_one_and_loss_zero():
    loss = MSSSIMLoss(weight=3.0, sigma=0.5)
    loss.setup((1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    assert torch.allclose(loss.similarity(x, x), torch.ones(4), atol=1e-6)
    assert torch.allclose(loss.loss(x, x), torch.zeros(4), atol=1e-5)


def test_log_prob_of_samples_is_minus_the_loss_of_each_picture():
    loss = MSSSIMLoss(sigma=0.5)
    loss.setup((1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    decoder_output = torch.randn(2, 3, 1, 8, 8, requires_grad=True)
    value = loss.log_prob(decoder_output, x)
    assert value.shape == (2, 3)
    expected = -loss.loss(torch.sigmoid(decoder_output[1]), x)
    assert torch.allclose(value[1], expected, atol=1e-5)
    (gradient,) = torch.autograd.grad(value.sum(), decoder_output)
    assert gradient.abs().sum() > 0  # the decoder learns through it


def test_a_window_too_wide_for_the_images_is_refused_in_one_line():
    with pytest.raises(VaelabError) as refused:
        MSSSIMLoss().setup((1, 8, 8))
    assert "\n" not in str(refused.value)
    assert "use a smaller model.likelihood.sigma" in str(refused.value)
    with pytest.raises(VaelabError, match="fits 2 scales on 28-pixel images, fewer than 3"):
        MSSSIMLoss(scales=3).setup((1, 28, 28))


@pytest.mark.slow
def test_a_short_mnist_run_lowers_the_ms_ssim_loss(mnist_data_dir, tmp_path):
    one_step, trained = training_lowers_the_validation_loss(
        ["likelihood=ms_ssim"],
        mnist_data_dir,
        tmp_path,
        train_batches=100,
        val_batches=2,
        logs_no_bound=True,
    )
    assert trained["val/recon"] < one_step["val/recon"]


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    resume_matches_straight_run(["likelihood=ms_ssim"], mnist_data_dir, tmp_path, metric="val/loss")
