"""vaelab.samplers.two_stage: on a trained first stage (a short digits run), the second stage's
codes are closer to N(0, I) than the first stage's (Dai & Wipf 2019, Theorem 4)."""

from __future__ import annotations

import pytest
import torch

from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.sampler_fit import training_codes
from vaelab.samplers.two_stage import TwoStageVAESampler


@pytest.fixture
def one_thread():
    """One torch thread: on a shared CPU two threads of small matrix products thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def kl_of_fitted_gaussian_to_standard_normal(codes: torch.Tensor) -> float:
    """KL(N(m, S) || N(0, I)) for the codes' mean m and covariance S (closed form)."""
    mean, covariance = codes.double().mean(0), torch.cov(codes.double().T)
    dims = len(mean)
    return 0.5 * float(torch.trace(covariance) + mean @ mean - dims - torch.logdet(covariance))


@pytest.mark.usefixtures("one_thread")
def test_the_second_stage_codes_are_closer_to_the_standard_normal(digits_run):
    """The aggregate posteriors compared: first-stage draws z ~ q(z|x) of the training images,
    second-stage draws u ~ q(u|z) of those."""
    run = load_run(locate_checkpoint(digits_run[0]), torch.device("cpu"))
    codes = training_codes(run.module.model, run.datamodule, torch.device("cpu"), progress="silent")
    generator = torch.Generator().manual_seed(1)
    first_stage = codes.mean + codes.stddev * torch.randn(codes.mean.shape, generator=generator)
    sampler = TwoStageVAESampler(hidden_dims=(64, 64), epochs=10, batch_size=256, lr=3e-3)
    summary = sampler.fit(codes, torch.Generator().manual_seed(0))
    second_stage = sampler.second_stage_codes(first_stage, generator)
    first = kl_of_fitted_gaussian_to_standard_normal(first_stage)
    second = kl_of_fitted_gaussian_to_standard_normal(second_stage)
    assert second < 0.5 * first
    assert summary.steps == 10 * 6  # 1437 training codes in batches of 256
    drawn = sampler.sample(4000, torch.Generator().manual_seed(0))
    # its samples E[z|u] are codes centred where the training codes are
    assert drawn.shape == (4000, 2)
    assert torch.allclose(drawn.mean(0), codes.mean.mean(0), atol=0.2)


def test_the_closed_form_kl_is_zero_for_standard_normal_codes():
    torch.manual_seed(0)
    assert kl_of_fitted_gaussian_to_standard_normal(torch.randn(20000, 3)) < 1e-3
    assert kl_of_fitted_gaussian_to_standard_normal(2 + torch.randn(20000, 3)) > 5.9
