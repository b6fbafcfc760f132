"""Importance-weighted estimate of log p(x) (Burda et al. 2015, eq. 8 / Rezende et al. 2014).

log p(x) ≈ log (1/k) Σᵢ wᵢ,  wᵢ = p(x|zᵢ) p(zᵢ) / q(zᵢ|x),  zᵢ ~ q(z|x).

The estimate is a stochastic lower bound whose expectation increases with k towards log p(x)
(Burda et al. 2015, Theorem 1). Samples are drawn in chunks of ``chunk_size`` × batch codes,
decoded in one forward pass each, and the log-sum-exp is accumulated across chunks in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vaelab.models.interface import LatentVariableModel


@dataclass
class ImportanceWeightedEstimate:
    """Per-data-point results, each [B] in float64 nats, from the same k samples.

    ``log_likelihood`` is log (1/k) Σ wᵢ (the IW estimate of log p(x));
    ``mean_log_weight`` is (1/k) Σ log wᵢ, the k-sample Monte-Carlo ELBO (never above
    ``log_likelihood``, by Jensen's inequality on the empirical mean);
    ``mean_log_likelihood`` is (1/k) Σ log p(x|zᵢ), i.e. −recon.
    """

    log_likelihood: Tensor
    mean_log_weight: Tensor
    mean_log_likelihood: Tensor
    num_samples: int


def _check_counts(num_samples: int, chunk_size: int) -> None:
    if int(num_samples) < 1:
        raise ValueError(f"eval.num_samples must be >= 1, got {num_samples}")
    if int(chunk_size) < 1:
        raise ValueError(f"eval.chunk_size must be >= 1, got {chunk_size}")


@torch.no_grad()
def importance_weighted_log_likelihood(
    model: LatentVariableModel,
    x: Tensor,
    num_samples: int,
    chunk_size: int,
    y: Tensor | None = None,
) -> ImportanceWeightedEstimate:
    """Estimate log p(x) (log p(x|y) for a conditional model) for a batch ``x`` with
    ``num_samples`` importance samples from the model's q(z|x), ``chunk_size`` samples (× B
    codes) per decoder pass, through the model's own ``sample_latents`` — the estimator
    behind the training bounds."""
    _check_counts(num_samples, chunk_size)
    batch = x.shape[0]
    device = x.device
    log_sum_weights = torch.full((batch,), -math.inf, dtype=torch.float64, device=device)
    sum_log_weights = torch.zeros(batch, dtype=torch.float64, device=device)
    sum_log_likelihood = torch.zeros(batch, dtype=torch.float64, device=device)
    remaining = int(num_samples)
    while remaining > 0:
        size = min(int(chunk_size), remaining)
        samples = model.sample_latents(x, y, size)  # log-densities [S, B]
        log_w = samples.log_weights_in(torch.float64)  # summed in float64, like the sums
        log_sum_weights = torch.logaddexp(log_sum_weights, torch.logsumexp(log_w, dim=0))
        sum_log_weights += log_w.sum(0)
        sum_log_likelihood += samples.log_likelihood.double().sum(0)
        remaining -= size
    return ImportanceWeightedEstimate(
        log_likelihood=log_sum_weights - math.log(num_samples),
        mean_log_weight=sum_log_weights / num_samples,
        mean_log_likelihood=sum_log_likelihood / num_samples,
        num_samples=int(num_samples),
    )
