"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation
Learning") with an EMA codebook, dead-code restarts and a learned gated-PixelCNN prior.

Through the model interface the latent z is the quantised code map z_q(x) ∈ R^(D×h×w),
flattened to ``latent_dim`` = D·h·w numbers (so the latent plots, traversals and active units
work on it). q(z|x) is the paper's one-hot categorical (§3.1, eq. 1): all its mass on the grid
of nearest codebook vectors, log q = 0 there. The prior is over the grid of code indices:
uniform in stage 1 (the paper's KL = log K per position, a constant) and a gated PixelCNN in
stage 2, trained on the frozen stage-1 model's codes. Both stages' ELBO,

    log p(x) ≥ log p(x | z_q(x)) + log p(k(x)) = −recon − kl,

is the bound the paper evaluates for the learned prior (§3.2–3.3); ``<stage>/elbo`` logs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, constraints
from typing_extensions import override

from vaelab.checkpoints import load_checkpoint
from vaelab.errors import VaelabError
from vaelab.likelihoods.base import EVENT_DIMS, ImageDistribution, Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.interface import (
    LatentSamples,
    LatentVariableModel,
    MissingCapability,
    input_shape_of,
)
from vaelab.models.vae import in_dtype_of
from vaelab.nets.networks import EncoderDecoder
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.nets.residual_conv import code_grid_shape
from vaelab.schema import Range

#: builds the encoder (x → z_e map of ``embedding_dim`` channels) and the decoder
CodeMapNetworkBuilder = Callable[..., EncoderDecoder]
#: builds the prior network over code grids, given the number of codes
PriorNetworkBuilder = Callable[..., GatedPixelCNN]
#: the checkpoint prefix of the model inside the LightningModule
#: the VQ-VAE's own objective (eq. 3), named for Hydra (see :meth:`VQVAE.default_objective`)
VQ_OBJECTIVE = "vaelab.objectives.vq.VectorQuantization"
MODULE_PREFIX = "model."
#: the parts a stage-2 model takes from the stage-1 checkpoint (and freezes)
STAGE1_PARTS = ("encoder", "decoder", "quantizer", "likelihood")


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
        self, num_codes: int, embedding_dim: int, decay: float, restart_below: float
    ) -> None:
        super().__init__()
        if not 0.0 <= float(decay) < 1.0:
            raise VaelabError(f"model.ema_decay must be in [0, 1), got {decay}")
        if float(restart_below) < 0:
            raise VaelabError(f"model.restart_below must be >= 0, got {restart_below}")
        self.num_codes, self.embedding_dim = int(num_codes), int(embedding_dim)
        self.decay, self.restart_below = float(decay), float(restart_below)
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
    to float rounding) and −∞ elsewhere."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, encoded: Tensor, quantized: Quantized) -> None:
        self.encoded = encoded
        self.quantized = quantized
        self.flat_codes = quantized.codes.flatten(1)
        super().__init__(
            batch_shape=encoded.shape[:1],
            event_shape=self.flat_codes.shape[1:],
            validate_args=False,
        )

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


class CodeGridPrior(nn.Module):
    """p(k) over (h, w) grids of code indices, read by the interface as a prior over flat
    code maps z (``log_prob`` maps z to its nearest code indices; every z the model draws is
    exactly a grid of codes)."""

    def __init__(self, grid_shape: tuple[int, int], num_codes: int) -> None:
        super().__init__()
        self.grid_shape = tuple(grid_shape)
        self.num_codes = int(num_codes)
        self._indices_of: Callable[[Tensor], Tensor] | None = None
        self._codes_of: Callable[[Tensor], Tensor] | None = None
        # not checkpointed: only tells which device the model is on
        self.register_buffer("device_anchor", torch.zeros(0), persistent=False)

    def attach(
        self, indices_of: Callable[[Tensor], Tensor], codes_of: Callable[[Tensor], Tensor]
    ) -> None:
        """The model's maps between flat code maps and index grids (not submodules)."""
        self._indices_of, self._codes_of = indices_of, codes_of

    def log_prob_of_indices(self, indices: Tensor) -> Tensor:
        """log p(k) [...] of index grids [..., h, w], in nats."""
        raise NotImplementedError

    def sample_indices(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) of flat code maps [..., D·h·w]: the mass of their code-index grid."""
        return self.log_prob_of_indices(self._indices_of(z))

    def sample(self, num: int) -> Tensor:
        """``num`` flat code maps z ~ p(z): [num, D·h·w]."""
        return self._codes_of(self.sample_indices(num))

    def distribution(self) -> Distribution:
        """p(k) as a distribution over index grids (event (h, w))."""
        raise NotImplementedError


class UniformCodePrior(CodeGridPrior):
    """Stage 1: p(k) uniform, log p(k) = −h·w·log K (the paper's constant KL, §3.1). It is
    not a model of the codes: sampling from it is refused (train the PixelCNN prior)."""

    def distribution(self) -> Distribution:
        logits = torch.zeros(*self.grid_shape, self.num_codes, device=self.device_anchor.device)
        return Independent(Categorical(logits=logits), 2)

    def log_prob_of_indices(self, indices: Tensor) -> Tensor:
        positions = math.prod(self.grid_shape)
        return torch.full(
            indices.shape[:-2], -positions * math.log(self.num_codes), device=indices.device
        )

    # the prior interface: a uniform prior over codes refuses whatever is asked
    def sample_indices(self, num: int, generator: torch.Generator | None = None) -> Tensor:  # noqa: ARG002
        raise MissingCapability(
            "the VQ-VAE of stage 1 has no learned prior p(z) to sample from (its uniform prior "
            "over codes only bounds log p(x)); train the PixelCNN prior on its codes: "
            "vaelab-train experiment=vqvae_prior_mnist stage1_ckpt=<run dir>/checkpoints/"
            "last.ckpt"
        )


class PixelCNNCodePrior(CodeGridPrior):
    """Stage 2: p(k) = Π_i p(k_i | k_<i), a gated PixelCNN over the code grid (van den Oord et
    al. 2016; the VQ-VAE paper's prior, §3.2)."""

    def __init__(self, grid_shape: tuple[int, int], num_codes: int, net: GatedPixelCNN) -> None:
        super().__init__(grid_shape, num_codes)
        if net.num_codes != self.num_codes:
            raise VaelabError(
                f"the prior network models {net.num_codes} codes but the codebook has "
                f"{self.num_codes}"
            )
        self.net = net

    def log_prob_of_indices(self, indices: Tensor) -> Tensor:
        leading = indices.shape[:-2]
        return self.net.log_prob(indices.reshape(-1, *self.grid_shape)).reshape(leading)

    def sample_indices(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        return self.net.sample(num, self.grid_shape, generator)

    def distribution(self) -> Distribution:
        return PixelCNNDistribution(self)


class PixelCNNDistribution(Distribution):
    """The PixelCNN prior as a torch Distribution over index grids (event (h, w))."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.nonnegative_integer

    def __init__(self, prior: PixelCNNCodePrior) -> None:
        self.prior = prior
        super().__init__(event_shape=torch.Size(prior.grid_shape), validate_args=False)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.prior.log_prob_of_indices(value)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        num = math.prod(sample_shape)
        return self.prior.sample_indices(num).reshape(*sample_shape, *self.prior.grid_shape)


class VQVAE(LatentVariableModel):
    """``vaelab-train model=vqvae``: x → z_e(x) (encoder) → nearest codes z_q (an
    :class:`EMACodebook` of ``num_codes`` vectors of ``embedding_dim``) → p(x|z_q) (decoder and
    ``likelihood=``). Trained with :class:`~vaelab.objectives.vq.VectorQuantization`, its
    default objective (eq. 3 with the EMA codebook of Appendix A.1, commitment cost β =
    ``commitment_cost``).

    Stage 2 (``prior_net`` and ``stage1_checkpoint`` set): the encoder, decoder, codebook and
    likelihood are loaded from the stage-1 run's checkpoint (``torch.load`` with
    ``weights_only=True``) and frozen; only the PixelCNN prior over the code grid trains, on
    the codes of the training images. ``sample`` needs that prior.

    ``net`` is a partial builder (``model.net``, e.g. :func:`~vaelab.nets.residual_conv.
    residual_conv`) called with ``input_shape``, ``embedding_dim`` and
    ``decoder_out_channels``; ``prior_net`` a partial (``model.prior_net``, a
    :class:`~vaelab.nets.pixelcnn.GatedPixelCNN`) called with ``num_codes``.
    """

    config_groups: ClassVar[frozenset[str]] = frozenset({"optimizer", "lr_scheduler"})

    def __init__(
        self,
        net: CodeMapNetworkBuilder,
        input_shape: Sequence[int],
        num_codes: Annotated[int, Range(ge=2)] = 512,
        embedding_dim: Annotated[int, Range(ge=1)] = 64,
        commitment_cost: Annotated[float, Range(ge=0)] = 0.25,
        ema_decay: Annotated[float, Range(ge=0, lt=1)] = 0.99,
        restart_below: Annotated[float, Range(ge=0)] = 1.0,
        likelihood: Likelihood | None = None,
        prior_net: PriorNetworkBuilder | None = None,
        stage1_checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        if int(num_codes) < 2:
            raise VaelabError(f"model.num_codes must be >= 2, got {num_codes}")
        if int(embedding_dim) < 1:
            raise VaelabError(f"model.embedding_dim must be >= 1, got {embedding_dim}")
        if float(commitment_cost) < 0:
            raise VaelabError(f"model.commitment_cost must be >= 0, got {commitment_cost}")
        if (prior_net is None) != (stage1_checkpoint is None):
            raise VaelabError(
                "the VQ-VAE's PixelCNN prior (stage 2) trains on the codes of a trained stage-1 "
                "model: set both model.prior_net and the stage-1 checkpoint "
                "(vaelab-train experiment=vqvae_prior_mnist stage1_ckpt=<stage-1 run>/"
                "checkpoints/last.ckpt), or neither for stage 1"
            )
        self.input_shape = input_shape_of(input_shape)
        try:
            self.grid_shape = code_grid_shape(self.input_shape)
        except ValueError as err:
            raise VaelabError(str(err)) from err
        self.embedding_dim = int(embedding_dim)
        self.latent_dim = self.embedding_dim * math.prod(self.grid_shape)
        self.commitment_cost = float(commitment_cost)
        self.likelihood = likelihood if likelihood is not None else BernoulliLikelihood()
        self.likelihood.setup(self.input_shape)
        networks = net(
            input_shape=self.input_shape,
            embedding_dim=self.embedding_dim,
            decoder_out_channels=self.likelihood.params_per_channel * self.input_shape[0],
        )
        self.encoder, self.decoder = networks.encoder, networks.decoder
        self.quantizer = EMACodebook(int(num_codes), self.embedding_dim, ema_decay, restart_below)
        if prior_net is None:
            prior: CodeGridPrior = UniformCodePrior(self.grid_shape, int(num_codes))
        else:
            prior = PixelCNNCodePrior(
                self.grid_shape, int(num_codes), prior_net(num_codes=int(num_codes))
            )
        prior.attach(self.indices_of, self.codes_of)
        # checkpoint keys model.prior.* behind the interface's read-only ``prior`` property
        self._modules["prior"] = prior
        self.stage1_checkpoint = stage1_checkpoint
        if stage1_checkpoint is not None:
            self.load_stage1(Path(stage1_checkpoint))

    @property
    def prior(self) -> CodeGridPrior:
        return self._modules["prior"]

    @property
    def learns_prior(self) -> bool:
        """Stage 2: only the PixelCNN prior trains; the stage-1 parts are frozen."""
        return self.stage1_checkpoint is not None

    @property
    def likelihood_is_continuous(self) -> bool:
        return self.likelihood.is_continuous

    # -- stage 2 --------------------------------------------------------------------------
    def load_stage1(self, path: Path) -> None:
        """Load the stage-1 parts from a vaelab-train checkpoint and freeze them."""
        state = load_checkpoint(path)["state_dict"]
        wanted = {
            key[len(MODULE_PREFIX) :]: value
            for key, value in state.items()
            if key.startswith(tuple(f"{MODULE_PREFIX}{part}." for part in STAGE1_PARTS))
        }
        own = {k: v for k, v in self.state_dict().items() if k.startswith(STAGE1_PARTS)}
        missing = sorted(own.keys() - wanted.keys())
        mismatched = sorted(
            k for k in own.keys() & wanted.keys() if own[k].shape != wanted[k].shape
        )
        if missing or mismatched:
            problem = (
                f"{mismatched[0]} is {list(wanted[mismatched[0]].shape)} there but "
                f"{list(own[mismatched[0]].shape)} here"
                if mismatched
                else f"it has no {missing[0]}"
            )
            raise VaelabError(
                f"stage1_ckpt={path} is not a checkpoint of this VQ-VAE ({problem}); pass a "
                "checkpoint of a model=vqvae run with the same model.* settings (num_codes, "
                "embedding_dim, model.net.*, likelihood=)"
            )
        self.load_state_dict(wanted, strict=False)
        for part in STAGE1_PARTS:
            getattr(self, part).requires_grad_(False)

    # -- the maps between flat code maps and index grids ----------------------------------
    def indices_of(self, z: Tensor) -> Tensor:
        """Nearest code indices [..., h, w] of flat code maps [..., D·h·w]."""
        leading = z.shape[:-1]
        grid = z.reshape(-1, self.embedding_dim, *self.grid_shape)
        indices = self.quantizer.quantize(grid).indices
        return indices.reshape(*leading, *self.grid_shape)

    def codes_of(self, indices: Tensor) -> Tensor:
        """Flat code maps [..., D·h·w] of index grids [..., h, w]."""
        return self.quantizer.lookup(indices).flatten(-3)

    # -- the interface --------------------------------------------------------------------
    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> QuantizedPosterior:
        """q(z|x): one-hot on the nearest codes of z_e(x) (no codebook update here)."""
        encoded = self.encoder(in_dtype_of(self.encoder, x))
        return QuantizedPosterior(encoded, self.quantizer.quantize(encoded))

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> ImageDistribution:
        """p(x|z) for flat code maps [..., D·h·w]: batch shape [...], event (C, H, W)."""
        leading = z.shape[:-1]
        grid = z.reshape(-1, self.embedding_dim, *self.grid_shape)
        out = self.decoder(in_dtype_of(self.decoder, grid))
        return self.likelihood.observation(out.reshape(*leading, *out.shape[-EVENT_DIMS:]))

    @override
    def sample_latents(
        self, x: Tensor, y: Tensor | None = None, num_samples: int | None = None
    ) -> LatentSamples:
        """q(z|x) is one point, so the k samples are one: decoded once and repeated."""
        posterior = self.encode(x, y)
        z = posterior.rsample()
        observation = self.decode(z, y)
        log_likelihood = observation.log_prob(x)
        log_prior = self.prior.log_prob_of_indices(posterior.indices)
        log_posterior = torch.zeros_like(log_likelihood)
        if num_samples is None:
            return LatentSamples(
                z, posterior, observation, log_likelihood, log_prior, log_posterior
            )
        k = int(num_samples)
        output = observation.decoder_output
        return LatentSamples(
            z=z.expand(k, *z.shape),
            posterior=posterior,
            observation=self.likelihood.observation(output.expand(k, *output.shape)),
            log_likelihood=log_likelihood.expand(k, -1),
            log_prior=log_prior.expand(k, -1),
            log_posterior=log_posterior.expand(k, -1),
        )

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decoder means E[x|z] of code grids drawn from the PixelCNN prior: [num, C, H, W].
        Stage 1 has none and raises :class:`MissingCapability`."""
        indices = self.prior.sample_indices(num, generator)
        return self.decode(self.codes_of(indices), y).mean

    @override
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """E[x | z_q(x)]."""
        return self.decode(self.encode(x, y).mean, y).mean

    def default_objective(self) -> nn.Module:
        """The eq. 3 objective (``objectives/vq.py``), built by its Hydra target: the
        objectives layer sits above the models and imports them, not the other way round."""
        return instantiate({"_target_": VQ_OBJECTIVE, "commitment_cost": self.commitment_cost})
