"""The one interface every latent-variable model implements.

Training (:class:`~vaelab.module.LatentVariableModule`), the objectives, the image callbacks,
``vaelab-eval`` and the importance-weighted log-likelihood use a model only through this
interface. A model whose latent is not one flat vector (a hierarchy, a spatial code) implements
the same methods: its ``z`` is whatever :meth:`LatentVariableModel.sample_latents` draws, and
the log-densities it returns are summed over all of its latent variables.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.errors import VaelabError
from vaelab.posteriors.geometry import EUCLIDEAN, LatentGeometry

LogDensity = Tensor | Callable[[], Tensor]


class LatentSamples:
    """k joint samples z_i ~ q(z|x) of a batch of B data points with their log-densities.

    Every log-density is [k, B] (or [B] when drawn without a sample axis) in nats, summed
    over the data point's dimensions: ``log_likelihood`` = log p(x|z_i), ``log_prior`` =
    log p(z_i), ``log_posterior`` = log q(z_i|x). ``posterior`` is q(z|x) itself (for a
    closed-form KL) and ``observation`` is p(x|z_i). A log-density may be handed over as a
    function: it is computed on first use only (a closed-form KL never needs log p(z) or
    log q(z|x) of the samples).
    """

    def __init__(
        self,
        z: Tensor,
        posterior: Distribution,
        observation: Distribution,
        log_likelihood: LogDensity,
        log_prior: LogDensity,
        log_posterior: LogDensity,
    ) -> None:
        self.z, self.posterior, self.observation = z, posterior, observation
        self._log_densities: dict[str, LogDensity] = {
            "log_likelihood": log_likelihood,
            "log_prior": log_prior,
            "log_posterior": log_posterior,
        }

    def _density(self, name: str) -> Tensor:
        value = self._log_densities[name]
        if not isinstance(value, Tensor):
            value = self._log_densities[name] = value()
        return value

    @property
    def log_likelihood(self) -> Tensor:
        return self._density("log_likelihood")

    @property
    def log_prior(self) -> Tensor:
        return self._density("log_prior")

    @property
    def log_posterior(self) -> Tensor:
        return self._density("log_posterior")

    def with_log_posterior(self, log_posterior: Tensor) -> LatentSamples:
        """The same samples scored by another log q(z|x) (one with stopped parameters)."""
        return LatentSamples(
            self.z,
            self.posterior,
            self.observation,
            self._log_densities["log_likelihood"],
            self._log_densities["log_prior"],
            log_posterior,
        )

    def with_z(self, z: Tensor) -> LatentSamples:
        """The same scores with another tensor standing for z (a detached copy, say)."""
        return LatentSamples(z, self.posterior, self.observation, *self._log_densities.values())

    def log_weights_in(self, dtype: torch.dtype | None = None) -> Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), the importance weights of p
        against q, summed in ``dtype`` (default: the densities' own): the one log-weight
        computation behind the Monte-Carlo ELBO, the IWAE family and the IW-NLL."""
        parts = (self.log_likelihood, self.log_prior, self.log_posterior)
        if dtype is not None:
            parts = tuple(part.to(dtype) for part in parts)
        return parts[0] + parts[1] - parts[2]

    @property
    def log_weights(self) -> Tensor:
        """log w_i in the densities' dtype (:meth:`log_weights_in`)."""
        return self.log_weights_in()


@dataclass(frozen=True)
class CategoricalBlock:
    """``size`` code numbers from ``start`` on that are one categorical variable's one-hot
    vector (a Gumbel-softmax VAE's, a JointVAE's discrete code)."""

    start: int
    size: int


@dataclass(frozen=True)
class LatentStructure:
    """How a model's latent is laid out, declared by the model (never guessed by callers).

    ``layers`` are the sizes of the stochastic layers in the order ``sample_latents`` draws
    them (bottom, read by the decoder, first); one entry is one flat latent vector with one
    q(z|x) and one p(z), the only case where a closed-form KL, per-dimension terms and codes
    compared across a batch exist. ``code_dim`` is the size of the code that pictures, latent
    plots and active units read (:meth:`LatentVariableModel.latent_codes`).

    ``encoded_posterior`` is False for a model whose ``sample_latents`` moves z after drawing
    it from :meth:`~LatentVariableModel.encode`'s q(z₀|x) with a map that reads the decoder
    (the Hamiltonian VAE's leapfrog steps), scoring auxiliary variables (momenta) in its log
    densities: the KL is then the Monte-Carlo one of the samples' log-densities, never a closed
    form of encode's q, and objectives that read q(z|x)'s marginals refuse."""

    layers: tuple[int, ...]
    code_dim: int
    encoded_posterior: bool = True
    #: the code's categorical variables (one-hot blocks), swept category by category in the
    #: discrete traversals instead of along a line; () for a continuous code
    categorical_blocks: tuple[CategoricalBlock, ...] = ()

    @property
    def continuous_dims(self) -> list[int]:
        """The code dimensions outside every categorical block (the ones traversals sweep)."""
        inside = {b.start + i for b in self.categorical_blocks for i in range(b.size)}
        return [d for d in range(self.code_dim) if d not in inside]

    @property
    def is_flat(self) -> bool:
        return len(self.layers) == 1


class MissingCapability(VaelabError):
    """The model lacks a part that a caller needs (an autoencoder has no prior, say)."""


def with_stopped_parameters(distribution: Distribution) -> Distribution:
    """The same distribution with every parameter tensor detached (nested distributions such
    as ``Independent``'s base included): its ``log_prob(z)`` has gradient with respect to z
    only. Works for any torch distribution whose parameters are the tensors it holds; one
    whose parameters live elsewhere (a transform's module) keeps them, which callers detect
    (see :meth:`LatentVariableModel.log_posterior_stopped`)."""
    stopped = copy.copy(distribution)
    for name, value in vars(distribution).items():
        if isinstance(value, Tensor):
            vars(stopped)[name] = value.detach()
        elif isinstance(value, Distribution):
            vars(stopped)[name] = with_stopped_parameters(value)
    return stopped


class LatentVariableModel(nn.Module, ABC):
    """p_θ(x, z | y) = p(z) p_θ(x | z, y) with an inference model q_φ(z | x, y).

    ``y`` is the batch's label (or factor) tensor; models that do not condition on it ignore
    it. ``input_shape`` is the data's (C, H, W), handed over by the datamodule.
    """

    #: the config groups besides ``model`` (and its parts) that this model uses; a group the
    #: user chooses that is not listed here is refused before anything is built
    config_groups: ClassVar[frozenset[str]] = frozenset(
        {"objective", "beta", "optimizer", "lr_scheduler"}
    )
    #: False for models fitted in one pass without gradient steps (PCA)
    trains_by_gradient: ClassVar[bool] = True

    input_shape: tuple[int, ...]
    latent_dim: int
    #: K for a class-conditional model (y: class indices 0 … K−1, needed by encode, decode
    #: and sample): its sample grids get one row per class; None for unconditional models
    num_classes: int | None = None
    #: what the model reads from a batch's y: None (unconditional: y is ignored) or
    #: "classes" (class indices 0 … K−1); the builders refuse data that does not provide it.
    #: A model whose part conditions (a class-conditional prior) sets it from that part.
    conditions_on: str | None = None

    @property
    def latent_structure(self) -> LatentStructure:
        """The layout of the latent (default: one flat vector of ``latent_dim`` numbers)."""
        return LatentStructure(layers=(int(self.latent_dim),), code_dim=int(self.latent_dim))

    def at_step(self, step: int) -> dict[str, float]:
        """Tell every part that follows the training step (it has an ``at_step(step)`` method:
        a categorical posterior's temperature schedule) which step this is; returns the values
        they set, by name, which the module logs beside ``beta``. Called by the module before
        each batch's objective, so a resumed run sets what an uninterrupted one does."""
        followers = self.__dict__.get("_step_followers")
        if followers is None:  # the parts are fixed once built: found once
            followers = [
                part
                for part in self.modules()
                if part is not self and callable(getattr(part, "at_step", None))
            ]
            self.__dict__["_step_followers"] = followers
        values: dict[str, float] = {}
        for part in followers:
            values.update(part.at_step(step) or {})
        return values

    @property
    def latent_geometry(self) -> LatentGeometry:
        """The space the codes live in (default R^D): a sphere or a Poincaré ball gets its own
        latent picture and no decoded grid or traversal (``plots/policy.py``)."""
        return EUCLIDEAN

    def labels_for_samples(
        self, num: int, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """The y to draw ``num`` unconditional samples with: None for a model that ignores y,
        classes drawn uniformly for a class-conditional one (p(x) = Σ_y p(y) p(x|y))."""
        if self.conditions_on is None:
            return None
        if self.conditions_on == "classes" and self.num_classes:
            return torch.randint(
                int(self.num_classes), (int(num),), device=self.device, generator=generator
            )
        raise MissingCapability(
            f"{type(self).__name__} conditions on {self.conditions_on} but cannot draw them"
        )

    @abstractmethod
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z | x, y) with batch shape [B]."""

    @abstractmethod
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x | z, y) over whole data points (event shape = ``input_shape``)."""

    @property
    def prior(self) -> nn.Module:
        """p(z), a :class:`~vaelab.priors.base.Prior` (it may hold parameters)."""
        raise MissingCapability(f"{type(self).__name__} has no prior p(z)")

    def sample_latents(
        self, x: Tensor, y: Tensor | None = None, num_samples: int | None = None
    ) -> LatentSamples:
        """Draw ``num_samples`` reparameterised z ~ q(z|x) per data point (None: one sample
        without a sample axis) and score them under p and q. A model with one flat latent
        needs nothing more than :meth:`encode`, :meth:`decode` and :attr:`prior`; a hierarchy
        overrides this and sums the log-densities of all its layers."""
        posterior = self.encode(x, y)
        z = posterior.rsample(() if num_samples is None else (int(num_samples),))
        observation = self.decode(z, y)
        return LatentSamples(
            z=z,
            posterior=posterior,
            observation=observation,
            log_likelihood=lambda: observation.log_prob(x),
            log_prior=lambda: self.prior.log_prob(z, y),
            log_posterior=lambda: posterior.log_prob(z),
        )

    def log_posterior_stopped(
        self,
        samples: LatentSamples,
        x: Tensor,  # noqa: ARG002 - a hierarchy re-encodes x
        y: Tensor | None = None,  # noqa: ARG002
    ) -> Tensor:
        """log q(z_i|x) of the drawn ``samples`` [k, B] with q's parameters detached, so that
        its gradient reaches the encoder only through z (the path derivative of Roeder et al.
        2017, used by ``objective.gradient=stl|dreg``). The default serves models that draw
        with the default :meth:`sample_latents`; a model that overrides it (a hierarchy) must
        override this too, else it refuses."""
        return with_stopped_parameters(samples.posterior).log_prob(samples.z)

    def log_weights(self, x: Tensor, y: Tensor | None = None, num_samples: int = 1) -> Tensor:
        """[k, B] log p(x, z_i) − log q(z_i|x) for z_i ~ q(z|x) (:meth:`sample_latents`'
        :meth:`LatentSamples.log_weights`), a convenience for callers that need nothing else."""
        return self.sample_latents(x, y, num_samples).log_weights

    @abstractmethod
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num`` pictures E[x|z] for z ~ p(z) (conditioned on ``y`` when given)."""

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """E[x | z = E_q z], the picture shown under each input."""
        return self.decode(self.encode(x, y).mean, y).mean

    def latent_codes(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """The distribution whose mean and spread the latent plots show (default: q(z|x))."""
        return self.encode(x, y)

    #: True when p(x|z) is a density over continuous values (bits/dim is then a density too)
    likelihood_is_continuous: bool = False

    @property
    def has_prior(self) -> bool:
        """False for a model without p(z) (an autoencoder, an RAE): it has no ELBO or log p(x),
        so vaelab-eval reports its reconstruction, and its samples come from ``sample`` or a
        sampler fitted to its codes."""
        try:
            self.prior  # noqa: B018 (asking is the capability test)
        except MissingCapability:
            return False
        return True

    @property
    def likelihood_is_normalised(self) -> bool:
        """False when the model's ``likelihood`` part is a reconstruction loss, not a
        normalised p(x|z) (its ``is_normalised``): the module then logs no bound on log p(x)
        and vaelab-eval reports no IW-NLL or bits/dim. True for a model without such a part."""
        return bool(getattr(getattr(self, "likelihood", None), "is_normalised", True))

    #: True for models whose marginal log p(x) is tractable (PPCA)
    has_exact_log_likelihood: ClassVar[bool] = False

    # the interface: models without a tractable log p(x) refuse, whatever x and y are
    def exact_log_likelihood(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """log p(x) [B] in closed form, for models that have it."""
        raise MissingCapability(f"{type(self).__name__} has no closed-form log p(x)")

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of p(x|z): the ``decoder`` network's and the
        ``likelihood``'s own, for objectives that step the decoder apart from the encoder
        (VAE-GAN's three optimisers, RAE-L2's decoder-only weight decay)."""
        parts = [self._modules.get(name) for name in ("decoder", "likelihood")]
        if parts[0] is None:
            raise MissingCapability(f"{type(self).__name__} has no single decoder network")
        return [
            p for part in parts if part is not None for p in part.parameters() if p.requires_grad
        ]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter not in :meth:`decoder_parameters` (the encoder, the
        posterior's and the prior's own)."""
        decoder = {id(p) for p in self.decoder_parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in decoder]

    def default_objective(self) -> nn.Module:
        """The objective of a model that does not use the ``objective=`` group (an
        autoencoder's reconstruction loss, PCA's squared error)."""
        raise MissingCapability(f"{type(self).__name__} is trained with objective=")

    @property
    def device(self) -> torch.device:
        parameter = next(self.parameters(), None)
        if parameter is not None:
            return parameter.device
        buffer = next(self.buffers(), None)
        return buffer.device if buffer is not None else torch.device("cpu")


def input_shape_of(input_shape: Sequence[int]) -> tuple[int, ...]:
    """The data's (C, H, W) as a tuple of ints (configs hand over ListConfigs)."""
    return tuple(int(size) for size in input_shape)
