"""The VQ-VAE's codebook and its quantised posterior (van den Oord, Vinyals & Kavukcuoglu
2017, "Neural Discrete Representation Learning", §3.1 and Appendix A.1): K code vectors
learned by exponential moving averages, the nearest-code quantisation of an encoder map with
its straight-through gradient, and q(z|x), one-hot on the nearest codes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaelab.posteriors.structure import vector_quantised
from vaelab.schema import NonNegativeFloat, PositiveInt, Range, checked_arguments


def perplexity(counts: Tensor) -> Tensor:
    """exp(H(p)) of the histogram ``counts`` [K] (p = counts / Σ counts), with 0·log 0 = 0:
    the effective number of codes in use (K when all are used equally, 1 for one code)."""
    p = counts.float() / counts.sum().clamp_min(1)
    return torch.exp(-torch.special.xlogy(p, p).sum())


@dataclass
class Quantized:
    """The nearest-code quantisation of an encoder map: ``indices`` [B, h, w] (long),
    ``codes`` z_q [B, D, h, w] (codebook vectors, no gradient to the encoder) and
    ``straight_through`` z_e + sg(z_q − z_e): z_q's value with z_e's gradient (§3.1)."""

    indices: Tensor
    codes: Tensor
    straight_through: Tensor


@checked_arguments("model")
class EMACodebook(nn.Module):
    """K codebook vectors e_k ∈ R^D learned by exponential moving averages (van den Oord et
    al. 2017, Appendix A.1): with n_k the number of encoder outputs z_j assigned to code k in
    a batch,

        N_k ← γ N_k + (1 − γ) n_k,   m_k ← γ m_k + (1 − γ) Σ_{j: k(j)=k} z_j,   e_k ← m_k / N_k.

    γ = 0 is one Lloyd (k-means) step; a code no output was ever assigned to keeps its vector.
    Codes whose N_k falls below ``restart_below`` are dead: each is moved to a random encoder
    output of the batch (N_k = 1, m_k = that output), as in Dhariwal et al. 2020 (Jukebox,
    §3.2); ``restart_below = 0`` disables this. The vectors and both averages are buffers, so
    they are checkpointed and restored exactly; they change only in :meth:`update`, which the
    objective calls in training steps."""

    def __init__(
        self,
        num_codes: PositiveInt,
        embedding_dim: PositiveInt,
        ema_decay: Annotated[float, Range(ge=0, lt=1)],
        restart_below: NonNegativeFloat,
    ) -> None:
        super().__init__()
        self.num_codes, self.embedding_dim = int(num_codes), int(embedding_dim)
        self.decay, self.restart_below = float(ema_decay), float(restart_below)
        # the paper's codebook initialisation is unspecified; a small uniform one as in Sonnet
        bound = 1.0 / self.num_codes
        vectors = torch.empty(self.num_codes, self.embedding_dim).uniform_(-bound, bound)
        self.register_buffer("vectors", vectors)
        self.register_buffer("ema_count", torch.ones(self.num_codes))
        self.register_buffer("ema_sum", vectors.clone())

    def nearest(self, flat: Tensor) -> Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row of [N, D]."""
        vectors = self.vectors.to(flat.dtype)
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ vectors.T + vectors.pow(2).sum(1)
        return distances.argmin(1)

    def quantize(self, encoded: Tensor) -> Quantized:
        """Nearest codes of an encoder map z_e [B, D, h, w] (eq. 1–2)."""
        flat = encoded.permute(0, 2, 3, 1).reshape(-1, self.embedding_dim)
        indices = self.nearest(flat.detach()).reshape(encoded.shape[0], *encoded.shape[2:])
        codes = self.lookup(indices).to(encoded.dtype)
        return Quantized(indices, codes, encoded + (codes - encoded).detach())

    def lookup(self, indices: Tensor) -> Tensor:
        """Code vectors of an index grid [..., h, w] → [..., D, h, w]."""
        return F.embedding(indices, self.vectors).movedim(-1, -3)

    @torch.no_grad()
    def update(self, encoded: Tensor, indices: Tensor) -> None:
        """One EMA step on a batch's encoder map z_e [B, D, h, w] and its nearest-code indices
        [B, h, w] (summed over every process of a distributed run), then the restarts."""
        flat = encoded.detach().float().permute(0, 2, 3, 1).reshape(-1, self.embedding_dim)
        one_hot = F.one_hot(indices.reshape(-1), self.num_codes).float()
        counts, sums = one_hot.sum(0), one_hot.T @ flat
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        assigned = self.ema_count > 0
        self.vectors[assigned] = self.ema_sum[assigned] / self.ema_count[assigned, None]
        self.restart_dead_codes(flat)

    @torch.no_grad()
    def restart_dead_codes(self, flat: Tensor) -> Tensor:
        """Move codes with N_k < ``restart_below`` to random rows of ``flat`` [N, D] (rank 0's
        choice in a distributed run); returns the restarted codes' indices."""
        dead = torch.nonzero(self.ema_count < self.restart_below).flatten()
        if len(dead) == 0:
            return dead
        chosen = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(chosen, src=0)
        self.vectors[dead] = chosen
        self.ema_sum[dead] = chosen
        self.ema_count[dead] = 1.0
        return dead


class QuantizedPosterior(Distribution):
    """q(z|x) of the VQ-VAE (eq. 1): one-hot on the grid of nearest codes, as a distribution
    over flat code maps z ∈ R^(D·h·w). ``rsample`` gives z_q with the straight-through
    gradient; ``mean`` is z_q; the variance and entropy are 0; ``log_prob`` is 0 at z_q (up
    to float rounding) and −∞ elsewhere.

    It also carries what the VQ objective (eq. 3) needs of the quantisation, so that the
    objective uses no model class: the commitment term (:meth:`commitment`) and its weight β
    (``commitment_cost``), the batch's code histogram (:meth:`code_counts`), the EMA step of
    the codebook that quantised it (:meth:`update_codebook`) and whether that codebook trains
    (``trains_codebook``: False once the encoder and codebook are frozen, as in a stage-2
    model that trains only its prior)."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        encoded: Tensor,
        quantized: Quantized,
        codebook: EMACodebook,
        commitment_cost: float,
        trains_codebook: bool = True,
    ) -> None:
        self.encoded = encoded
        self.quantized = quantized
        self.codebook = codebook
        self.commitment_cost = float(commitment_cost)
        self.trains_codebook = bool(trains_codebook)
        self.flat_codes = quantized.codes.flatten(1)
        super().__init__(
            batch_shape=encoded.shape[:1],
            event_shape=self.flat_codes.shape[1:],
            validate_args=False,
        )

    def commitment(self) -> Tensor:
        """‖z_e(x) − sg[z_q(x)]‖² [B], summed over the code map (eq. 3's third term, before
        its weight β): its gradient reaches the encoder only."""
        code_dims = tuple(range(1, self.encoded.dim()))
        return (self.encoded - self.quantized.codes.detach()).pow(2).sum(code_dims)

    def code_counts(self) -> Tensor:
        """How often each of the K codes is the nearest one in this batch: [K] (long)."""
        return torch.bincount(self.indices.flatten(), minlength=self.codebook.num_codes)

    def update_codebook(self) -> None:
        """One EMA step of the codebook on this batch's encoder map and codes (Appendix A.1),
        in place of eq. 3's codebook term ‖sg[z_e(x)] − e‖²."""
        self.codebook.update(self.encoded, self.indices)

    @property
    def indices(self) -> Tensor:
        return self.quantized.indices

    @property
    def mean(self) -> Tensor:
        return self.flat_codes

    @property
    def variance(self) -> Tensor:
        return torch.zeros_like(self.flat_codes)

    def entropy(self) -> Tensor:
        return torch.zeros(self.batch_shape, device=self.flat_codes.device)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        flat = self.quantized.straight_through.flatten(1)
        return flat.expand(*sample_shape, *flat.shape)

    def log_prob(self, value: Tensor) -> Tensor:
        codes = self.flat_codes.detach().float()
        at_mode = torch.isclose(value.detach().float(), codes, rtol=1e-4, atol=1e-5).all(-1)
        zero = torch.zeros((), device=value.device)
        return torch.where(at_mode, zero, torch.full_like(zero, -math.inf))


@vector_quantised.register
def _(distribution: QuantizedPosterior) -> QuantizedPosterior:
    return distribution
