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

The codebook and q(z|x) live in :mod:`vaelab.posteriors.codebook`, the priors over code grids
in :mod:`vaelab.priors.code_grid`; this file is the model that joins them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ClassVar

import torch
from torch import Tensor
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
from vaelab.posteriors.codebook import EMACodebook, QuantizedPosterior
from vaelab.priors.code_grid import CodeGridPrior, PixelCNNCodePrior, UniformCodePrior
from vaelab.schema import ImageShape, NonNegativeFloat, PositiveInt, Range, checked_arguments

#: builds the encoder (x → z_e map of ``embedding_dim`` channels) and the decoder
CodeMapNetworkBuilder = Callable[..., EncoderDecoder]
#: builds the prior network over code grids, given the number of codes
PriorNetworkBuilder = Callable[..., GatedPixelCNN]
#: the checkpoint prefix of the model inside the LightningModule
MODULE_PREFIX = "model."
#: the parts a stage-2 model takes from the stage-1 checkpoint (and freezes)
STAGE1_PARTS = ("encoder", "decoder", "quantizer", "likelihood")
#: how a stage-2 run names the stage-1 checkpoint it trains on
STAGE2_COMMAND = (
    "vaelab-train experiment=vqvae_prior_mnist "
    "model.stage1_checkpoint=<stage-1 run>/checkpoints/last.ckpt"
)


@checked_arguments("model")
class VQVAE(LatentVariableModel):
    """``vaelab-train model=vqvae``: x → z_e(x) (encoder) → nearest codes z_q (an
    :class:`EMACodebook` of ``num_codes`` vectors of ``embedding_dim``) → p(x|z_q) (decoder and
    ``likelihood=``). Trained with ``objective=vq`` (eq. 3 with the EMA codebook of Appendix
    A.1), which ``conf/model/vqvae.yaml`` chooses and ``config_groups`` makes the only usable
    one; that objective reads everything it needs from the :class:`QuantizedPosterior` that
    :meth:`encode` returns, the commitment cost β = ``commitment_cost`` included (as in
    Sonnet's ``VectorQuantizerEMA``, the quantiser's setting).

    Stage 2 (``prior_net`` and ``stage1_checkpoint`` set): the encoder, decoder, codebook and
    likelihood are loaded from the stage-1 run's checkpoint (``torch.load`` with
    ``weights_only=True``) and frozen; only the PixelCNN prior over the code grid trains, on
    the codes of the training images. ``sample`` needs that prior.

    ``net`` is a partial builder (``model.net``, e.g. :func:`~vaelab.nets.residual_conv.
    residual_conv`) called with ``input_shape``, ``embedding_dim`` and
    ``decoder_out_channels``; ``prior_net`` a partial (``model.prior_net``, a
    :class:`~vaelab.nets.pixelcnn.GatedPixelCNN`) called with ``num_codes``.
    """

    #: the VQ objective only: a generic one (objective=elbo) would never update the codebook
    config_groups: ClassVar[frozenset[str]] = frozenset(
        {"objective=vq", "optimizer", "lr_scheduler"}
    )

    def __init__(
        self,
        net: CodeMapNetworkBuilder,
        input_shape: ImageShape,
        num_codes: Annotated[int, Range(ge=2)] = 512,
        embedding_dim: PositiveInt = 64,
        commitment_cost: NonNegativeFloat = 0.25,
        ema_decay: Annotated[float, Range(ge=0, lt=1)] = 0.99,
        restart_below: NonNegativeFloat = 1.0,
        likelihood: Likelihood | None = None,
        prior_net: PriorNetworkBuilder | None = None,
        stage1_checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        if (prior_net is None) != (stage1_checkpoint is None):
            raise VaelabError(
                "the VQ-VAE's PixelCNN prior (stage 2) trains on the codes of a trained stage-1 "
                "model: set both model.prior_net and model.stage1_checkpoint "
                f"({STAGE2_COMMAND}), or neither for stage 1"
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
                f"model.stage1_checkpoint={path} is not a checkpoint of this VQ-VAE "
                f"({problem}); pass a checkpoint of a model=vqvae run with the same model.* "
                "settings (num_codes, embedding_dim, model.net.*, likelihood=)"
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
        return QuantizedPosterior(
            encoded,
            self.quantizer.quantize(encoded),
            self.quantizer,
            commitment_cost=self.commitment_cost,
            trains_codebook=not self.learns_prior,
        )

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
        if not self.prior.samples:
            raise MissingCapability(
                "the VQ-VAE of stage 1 has no learned prior p(z) to sample from (its uniform "
                "prior over codes only bounds log p(x)); train the PixelCNN prior on its codes: "
                f"{STAGE2_COMMAND}"
            )
        indices = self.prior.sample_indices(num, generator)
        return self.decode(self.codes_of(indices), y).mean

    @override
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """E[x | z_q(x)]."""
        return self.decode(self.encode(x, y).mean, y).mean
