"""Test-set metrics of a trained VAE: ELBO terms, IW-NLL, bits/dim, active units.

Every quantity is in nats per data point unless its name says bits: bits/dim =
NLL / (D · ln 2) with D = C·H·W (Theis et al. 2016). For a discrete likelihood this is a
code length; for a continuous one (``likelihood.is_continuous``) it is a density and can be
negative — it is then not comparable with the discrete numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Independent, kl_divergence

from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD, active_units
from vaelab.evaluation.encodings import Encodings, marginal_stddev
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.vae import VAE

#: a model with a tractable marginal exposes one of these: ``method(x) -> log p(x) [B]``
#: (vaelab.baselines.ppca.ProbabilisticPCA has ``log_marginal``)
EXACT_LIKELIHOOD_METHODS = ("exact_log_likelihood", "log_marginal")

ExactLogLikelihood = Callable[[Tensor], Tensor]


@dataclass
class TestSetEvaluation:
    """Per-data-point results over the evaluated test points (N of them), float64 nats."""

    iw_log_likelihood: Tensor  # [N] log p(x) estimated with k importance samples
    recon: Tensor  # [N] −E_q log p(x|z), estimated with the same k samples
    kl: Tensor  # [N] KL(q(z|x) || p(z)), closed form where torch knows it, else Monte Carlo
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
        return len(self.iw_log_likelihood)


def bits_per_dim(nll: float, data_dims: int) -> float:
    """NLL in nats per data point → bits per dimension: NLL / (D · ln 2)."""
    return nll / (data_dims * math.log(2))


def _kl_terms(q, prior, factorizes: bool, mc_kl: Tensor) -> tuple[Tensor, Tensor | None]:
    """KL(q || p) per point [B] (analytic if registered, else the Monte-Carlo ``mc_kl``) and,
    for a factorising q, per dimension [B, D]."""
    try:
        kl = kl_divergence(q, prior).double()
    except NotImplementedError:
        kl = mc_kl
    per_dim = None
    if factorizes and hasattr(q, "base_dist") and hasattr(prior, "base_dist"):
        try:
            per_dim = kl_divergence(q.base_dist, prior.base_dist).double()
        except NotImplementedError:
            per_dim = None
        if per_dim is not None and per_dim.shape != q.mean.shape:
            per_dim = None
    return kl, per_dim


def find_exact_log_likelihood(*owners: object) -> ExactLogLikelihood | None:
    """The first :data:`EXACT_LIKELIHOOD_METHODS` method among ``owners`` (the VAE, the
    module), or None when the model's log p(x) is intractable."""
    for owner in owners:
        for name in EXACT_LIKELIHOOD_METHODS:
            method = getattr(owner, name, None)
            if callable(method):
                return method
    return None


def _factorizes(vae: VAE, q) -> bool:
    """Whether q(z|x) factorises over dimensions (the posterior family says; else its type)."""
    posterior = getattr(vae, "posterior", None)
    if posterior is not None:
        return bool(posterior.factorizes)
    return isinstance(q, Independent) and q.reinterpreted_batch_ndims == 1


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate_test_set(
    vae: VAE,
    batches: Iterable[tuple[Tensor, Tensor]],
    num_samples: int,
    chunk_size: int,
    exact: ExactLogLikelihood | None = None,
) -> TestSetEvaluation:
    """Run the IW estimator and the ELBO terms over ``batches`` of (x [B, C, H, W], labels)."""
    columns: dict[str, list[Tensor]] = {
        name: []
        for name in ("iw", "recon", "kl", "kl_per_dim", "exact", "mean", "stddev", "labels")
    }
    iw_seconds = 0.0
    for x, labels in batches:
        _synchronize(x.device)
        start = time.perf_counter()
        estimate = importance_weighted_log_likelihood(vae, x, num_samples, chunk_size)
        _synchronize(x.device)
        iw_seconds += time.perf_counter() - start
        q = vae.encode(x)
        mc_kl = estimate.mean_log_likelihood - estimate.mean_log_weight
        kl, kl_per_dim = _kl_terms(q, vae.prior(), _factorizes(vae, q), mc_kl)
        columns["iw"].append(estimate.log_likelihood.cpu())
        columns["recon"].append(-estimate.mean_log_likelihood.cpu())
        columns["kl"].append(kl.cpu())
        if kl_per_dim is not None:
            columns["kl_per_dim"].append(kl_per_dim.cpu())
        if exact is not None:
            columns["exact"].append(exact(x).double().cpu())
        columns["mean"].append(q.mean.float().cpu())
        columns["stddev"].append(marginal_stddev(q).float().cpu())
        columns["labels"].append(labels.cpu())
    if not columns["iw"]:
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
        data_dims=math.prod(vae.input_shape),
        is_continuous=bool(getattr(vae.likelihood, "is_continuous", False)),
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
