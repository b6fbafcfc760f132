"""Test-set metrics of a trained VAE: ELBO terms, IW-NLL, bits/dim, active units.

Every quantity is in nats per data point unless its name says bits: bits/dim =
NLL / (D · ln 2) with D = C·H·W (Theis et al. 2016). For a discrete likelihood this is a
code length; for a continuous one (``likelihood.is_continuous``) it is a density and can be
negative — it is then not comparable with the discrete numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD, active_units
from vaelab.evaluation.encodings import Encodings, marginal_stddev
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.elbo import ELBO
from vaelab.schedules.constant import ConstantBeta

#: samples per data point of the ELBO that eval reports (its recon term is a Monte-Carlo mean)
ELBO_SAMPLES = 100


@dataclass
class TestSetEvaluation:
    """Per-data-point results over the evaluated test points (N of them), float64 nats."""

    iw_log_likelihood: Tensor | None  # [N] log p(x) from k importance samples (None: a loss)
    recon: Tensor  # [N] −E_q log p(x|z) of the training ELBO (Monte Carlo)
    kl: Tensor | None  # [N] KL(q(z|x) || p(z)), closed form or Monte Carlo (None: no p(z))
    kl_per_dim: Tensor | None  # [N, D] when the posterior factorises
    exact_log_likelihood: Tensor | None  # [N] when the model has a tractable log p(x)
    encodings: Encodings
    num_samples: int
    data_dims: int
    is_continuous: bool
    iw_seconds: float

    @property
    def elbo(self) -> Tensor:
        return -(self.recon + self.kl)

    @property
    def num_points(self) -> int:
        return len(self.recon)

    @property
    def is_normalised(self) -> bool:
        """False when p(x|z) is a reconstruction loss: no log p(x), ELBO or bits/dim."""
        return self.iw_log_likelihood is not None


def bits_per_dim(nll: float, data_dims: int) -> float:
    """NLL in nats per data point → bits per dimension: NLL / (D · ln 2)."""
    return nll / (data_dims * math.log(2))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_test_set(
    model: LatentVariableModel,
    batches: Iterable[tuple[Tensor, Tensor]],
    num_samples: int,
    chunk_size: int,
    elbo_samples: int = ELBO_SAMPLES,
) -> TestSetEvaluation:
    """Run the IW estimator and the ELBO over ``batches`` of (x [B, C, H, W], labels).

    The ELBO and its terms come from the training objective :class:`~vaelab.objectives.elbo.
    ELBO` at β = 1 (closed-form KL where torch.distributions has one, chosen as in training),
    with ``elbo_samples`` samples per point; the IW estimate from the model's
    ``sample_latents``; the exact log p(x) from the model when it has one."""
    has_prior = model.has_prior
    elbo = ELBO(kl="auto", num_samples=elbo_samples)
    unit_weight = ConstantBeta(1.0)
    if has_prior:
        elbo.setup(model, unit_weight, {})
    columns: dict[str, list[Tensor]] = {
        name: []
        for name in ("iw", "recon", "kl", "kl_per_dim", "exact", "mean", "stddev", "labels")
    }
    iw_seconds = 0.0
    for x, labels in batches:
        if not has_prior:  # an autoencoder: −log p(x|z = its code), nothing else is defined
            code = model.encode(x, labels).mean
            recon = -model.decode(code, labels).log_prob(x)
            columns["recon"].append(recon.double().cpu())
            columns["mean"].append(code.float().cpu())
            columns["stddev"].append(torch.zeros_like(code).float().cpu())
            columns["labels"].append(labels.cpu())
            continue
        if model.likelihood_is_normalised:  # a reconstruction loss has no log p(x) to estimate
            _synchronize(x.device)
            start = time.perf_counter()
            estimate = importance_weighted_log_likelihood(model, x, num_samples, chunk_size, labels)
            _synchronize(x.device)
            iw_seconds += time.perf_counter() - start
            columns["iw"].append(estimate.log_likelihood.cpu())
        out = elbo(model, x, labels, unit_weight, 0)
        columns["recon"].append(out.terms["recon"].double().cpu())
        columns["kl"].append(out.terms["kl"].double().cpu())
        if "kl" in out.per_dimension:
            columns["kl_per_dim"].append(out.per_dimension["kl"].double().cpu())
        if model.has_exact_log_likelihood:
            columns["exact"].append(model.exact_log_likelihood(x, labels).double().cpu())
        codes = model.latent_codes(x, labels)
        columns["mean"].append(codes.mean.float().cpu())
        columns["stddev"].append(marginal_stddev(codes).float().cpu())
        columns["labels"].append(labels.cpu())
    if not columns["recon"]:
        raise ValueError("no test batches to evaluate; check eval.limit_batches and the test split")
    joined = {name: torch.cat(parts) if parts else None for name, parts in columns.items()}
    return TestSetEvaluation(
        iw_log_likelihood=joined["iw"],
        recon=joined["recon"],
        kl=joined["kl"],
        kl_per_dim=joined["kl_per_dim"],
        exact_log_likelihood=joined["exact"],
        encodings=Encodings(mean=joined["mean"], stddev=joined["stddev"], labels=joined["labels"]),
        num_samples=int(num_samples),
        data_dims=math.prod(model.input_shape),
        is_continuous=model.likelihood_is_continuous,
        iw_seconds=iw_seconds,
    )


def _mean_and_stderr(values: Tensor) -> tuple[float, float]:
    n = len(values)
    stderr = float(values.std(correction=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(values.mean()), stderr


def summarize(
    result: TestSetEvaluation, threshold: float = ACTIVITY_THRESHOLD
) -> dict[str, object]:
    """The scalars of metrics.json (and TensorBoard): nats per data point, bits/dim, counts."""
    if not result.is_normalised:
        return _summarize_loss(result, threshold)
    iw_nll, iw_nll_stderr = _mean_and_stderr(-result.iw_log_likelihood)
    elbo, elbo_stderr = _mean_and_stderr(result.elbo)
    units = active_units(result.encodings.mean, threshold) if result.num_points > 1 else None
    summary: dict[str, object] = {
        "num_points": result.num_points,
        "num_importance_samples": result.num_samples,
        "data_dims": result.data_dims,
        "latent_dim": int(result.encodings.mean.shape[1]),
        "elbo": elbo,
        "elbo_stderr": elbo_stderr,
        "neg_elbo": -elbo,
        "recon": float(result.recon.mean()),
        "kl": float(result.kl.mean()),
        "kl_per_dim": (
            result.kl_per_dim.mean(0).tolist() if result.kl_per_dim is not None else None
        ),
        "iw_nll": iw_nll,
        "iw_nll_stderr": iw_nll_stderr,
        "iw_gap": -elbo - iw_nll,
        "bits_per_dim": bits_per_dim(iw_nll, result.data_dims),
        "bits_per_dim_elbo": bits_per_dim(-elbo, result.data_dims),
        "likelihood_is_continuous": result.is_continuous,
        "active_units": units.count if units is not None else None,
        "active_unit_threshold": float(threshold),
        "posterior_mean_variance": units.activity.tolist() if units is not None else None,
        "exact_nll": None,
        "iw_seconds": result.iw_seconds,
        "iw_samples_per_second": (
            result.num_points * result.num_samples / result.iw_seconds
            if result.iw_seconds > 0
            else None
        ),
    }
    if result.exact_log_likelihood is not None:
        exact_nll = float(-result.exact_log_likelihood.mean())
        summary["exact_nll"] = exact_nll
        summary["exact_bits_per_dim"] = bits_per_dim(exact_nll, result.data_dims)
        summary["iw_nll_minus_exact"] = iw_nll - exact_nll
    return summary


def _summarize_loss(result: TestSetEvaluation, threshold: float) -> dict[str, object]:
    """The scalars of a model whose p(x|z) is a reconstruction loss: ``recon`` (the loss),
    ``kl`` and their sum ``loss`` at β = 1; no log p(x), ELBO or bits/dim exist for it. A model
    without a prior (``kl`` None): ``recon`` = −log p(x|z) at its code is the loss."""
    units = active_units(result.encodings.mean, threshold) if result.num_points > 1 else None
    has_prior = result.kl is not None
    recon = float(result.recon.mean())
    kl = float(result.kl.mean()) if has_prior else None
    skipped = ("elbo", "elbo_stderr", "neg_elbo", "iw_nll", "iw_nll_stderr", "iw_gap")
    return {
        "num_points": result.num_points,
        "num_importance_samples": None,
        "data_dims": result.data_dims,
        "latent_dim": int(result.encodings.mean.shape[1]),
        "loss": recon + (kl or 0.0),
        "has_prior": has_prior,
        "recon": recon,
        "kl": kl,
        "kl_per_dim": (
            result.kl_per_dim.mean(0).tolist() if result.kl_per_dim is not None else None
        ),
        **dict.fromkeys(skipped),
        "bits_per_dim": None,
        "bits_per_dim_elbo": None,
        "likelihood_is_continuous": result.is_continuous,
        "likelihood_is_normalised": False,
        "active_units": units.count if units is not None else None,
        "active_unit_threshold": float(threshold),
        "posterior_mean_variance": units.activity.tolist() if units is not None else None,
        "exact_nll": None,
        "iw_seconds": None,
        "iw_samples_per_second": None,
    }
