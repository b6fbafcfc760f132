"""VAEs with L stochastic layers (Burda, Grosse & Salakhutdinov 2015, §5 and App. C).

Generative model p(x, z) = p(x|z_1) p(z_1|z_2) … p(z_{L−1}|z_L) p(z_L), with p(z_L) = N(0, I)
and diagonal Gaussians p(z_l|z_{l+1}); inference model q(z|x) = q(z_1|x) q(z_2|z_1) …
q(z_L|z_{L−1}), bottom-up (Burda et al. eq. 4 with the hierarchy of their §5). Every
conditional is an MLP with a linear (μ, log σ²) head. The ELBO and IWAE bounds are those of a
one-layer model with log p(z) and log q(z|x) summed over the layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import EVENT_DIMS, ImageDistribution, Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.interface import (
    LatentSamples,
    LatentStructure,
    LatentVariableModel,
    MissingCapability,
    input_shape_of,
)
from vaelab.models.vae import in_dtype_of
from vaelab.nets.activations import Activation, make_activation
from vaelab.nets.mlp import MLPDecoder
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.priors.base import drawing_with
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schema import ImageShape, PositiveInt, checked_arguments


@dataclass
class HierarchicalLatents:
    """One joint draw of all stochastic layers, each [..., d_l]: ``layers[0]`` is z_1 (the
    layer the decoder p(x|z_1) reads), ``layers[-1]`` is z_L (the top, under p(z_L) = N(0, I))."""

    layers: tuple[Tensor, ...]

    @property
    def bottom(self) -> Tensor:
        return self.layers[0]

    @property
    def top(self) -> Tensor:
        return self.layers[-1]

    def detach(self) -> HierarchicalLatents:
        return HierarchicalLatents(tuple(layer.detach() for layer in self.layers))


class GaussianLayer(nn.Module):
    """inputs [..., in_features] → hidden layers (``body``) → a linear head (μ, log σ²) of a
    diagonal Gaussian over ``out_features`` numbers."""

    def __init__(
        self,
        in_features: int,
        hidden_dims: Sequence[int],
        out_features: int,
        activation: str,
        negative_slope: float,
    ) -> None:
        super().__init__()
        sizes = [int(in_features), *(int(h) for h in hidden_dims)]
        layers: list[nn.Module] = []
        for fan_in, fan_out in pairwise(sizes):
            layers += [
                nn.Linear(fan_in, fan_out),
                make_activation(activation, negative_slope, after_linear=True),
            ]
        self.body = nn.Sequential(*layers)
        self.features = sizes[-1]
        self.head = nn.Linear(self.features, 2 * int(out_features))
        self.gaussian = DiagonalGaussianPosterior("log_var")

    def parameters_of(self, inputs: Tensor) -> Tensor:
        """The head's (μ, log σ²) for ``inputs`` [..., in_features]: [..., 2·out_features]."""
        return self.head(self.body(in_dtype_of(self, inputs)))

    def forward(self, inputs: Tensor) -> Distribution:
        """The diagonal Gaussian N(μ(inputs), σ²(inputs)), batch shape [...]."""
        return self.gaussian.distribution(self.parameters_of(inputs))


@checked_arguments("model")
class HierarchicalVAE(LatentVariableModel):
    """A VAE with ``len(latent_dims)`` stochastic layers (Burda et al. 2015, §5: two layers,
    pixels–200–200–100 then 100–100–50 on MNIST, tanh).

    ``latent_dims`` are the layer sizes from the bottom z_1 to the top z_L; ``hidden_dims[l]``
    the deterministic widths between layer l−1 (the data for l = 0) and layer l in q, mirrored
    in p. ``likelihood`` is p(x|z_1) (``likelihood=`` group); the posterior of each layer is a
    diagonal Gaussian and the top prior N(0, I), so ``posterior=`` and ``prior=`` do not apply.

    ``z`` is a :class:`HierarchicalLatents`; :meth:`sample_latents` returns log p(z) and
    log q(z|x) summed over all layers. With two or more layers there is no single q(z|x) and
    p(z) pair, so the KL has no closed form: ``objective.kl=auto`` estimates it by Monte Carlo
    (log q − log p of every layer, summed); one layer is the VAE, with the analytic KL. The
    latent plots and active units see the bottom layer z_1
    (:meth:`latent_codes`), the layer the decoder reads; :meth:`layer_codes` gives every layer.
    """

    def __init__(
        self,
        latent_dims: Sequence[PositiveInt],
        hidden_dims: Sequence[Sequence[PositiveInt]],
        input_shape: ImageShape,
        activation: Activation = "tanh",
        negative_slope: float = 0.2,
        likelihood: Likelihood | None = None,
    ) -> None:
        super().__init__()
        self.latent_dims = tuple(int(d) for d in latent_dims)
        hidden = [tuple(int(h) for h in widths) for widths in hidden_dims]
        if not self.latent_dims:
            raise VaelabError(
                "model.latent_dims must list one size >= 1 per stochastic layer, got []"
            )
        if len(hidden) != len(self.latent_dims):
            raise VaelabError(
                f"model.hidden_dims must have one list of widths per stochastic layer "
                f"({len(self.latent_dims)} for latent_dims={list(self.latent_dims)}), got "
                f"{len(hidden)}"
            )
        self.hidden_dims = hidden
        self.latent_dim = self.latent_dims[0]
        self.input_shape = input_shape_of(input_shape)
        self.likelihood = likelihood if likelihood is not None else BernoulliLikelihood()
        self.likelihood.setup(self.input_shape)
        self.activation, self.negative_slope = activation, float(negative_slope)
        self.inference = self.build_inference()
        # p(z_l | z_{l+1}) for l = 1 … L−1: the widths of q's step l+1, mirrored
        self.generative = nn.ModuleList(
            GaussianLayer(
                self.latent_dims[level + 1],
                hidden[level + 1][::-1],
                self.latent_dims[level],
                activation,
                self.negative_slope,
            )
            for level in range(self.num_layers - 1)
        )
        channels, height, width = self.input_shape
        self.decoder = MLPDecoder(
            self.latent_dims[0],
            hidden[0][::-1],
            (self.likelihood.params_per_channel * channels, height, width),
            activation,
            self.negative_slope,
        )
        self.top_prior = StandardNormalPrior()
        self.top_prior.setup(self.latent_dims[-1], self.input_shape, self.encode)

    def build_inference(self) -> nn.ModuleList:
        """q(z_1|x), q(z_2|z_1), …: layer l reads the sample of layer l−1 (the data for l = 1)."""
        inputs = [math.prod(self.input_shape), *self.latent_dims[:-1]]
        return nn.ModuleList(
            GaussianLayer(fan_in, widths, size, self.activation, self.negative_slope)
            for fan_in, widths, size in zip(inputs, self.hidden_dims, self.latent_dims, strict=True)
        )

    @property
    def num_layers(self) -> int:
        return len(self.latent_dims)

    @property
    @override
    def latent_structure(self) -> LatentStructure:
        """The stochastic layers, bottom first; pictures and active units read z_1."""
        return LatentStructure(layers=self.latent_dims, code_dim=self.latent_dims[0])

    @property
    def prior(self) -> nn.Module:
        """p(z_1) = N(0, I) for one layer (the VAE: the KL is then analytic); a deeper
        hierarchy has no single prior."""
        if self.num_layers == 1:
            return self.top_prior
        raise MissingCapability(
            f"{type(self).__name__} has no single prior p(z): its latent is {self.num_layers} "
            "stochastic layers, p(z_L) p(z_(L-1)|z_L) …, scored layer by layer in sample_latents"
        )

    @property
    def likelihood_is_continuous(self) -> bool:
        return self.likelihood.is_continuous

    # -- the passes -----------------------------------------------------------------------
    def infer(
        self, x: Tensor, num_samples: int | None, use_means: bool = False
    ) -> tuple[list[Tensor], list[Distribution], Tensor]:
        """Draw every layer from q (bottom-up): the samples z_1 … z_L, the distributions
        q(z_1|x), q(z_2|z_1), … and log q(z|x) summed over the layers ([k, B] or [B]).
        ``use_means``: each layer at its mean instead of a draw (for plots)."""
        shape = () if num_samples is None else (int(num_samples),)
        inputs = x.flatten(-EVENT_DIMS)
        layers: list[Tensor] = []
        posteriors: list[Distribution] = []
        log_posterior = torch.zeros((), device=x.device)
        for level, layer in enumerate(self.inference):
            q = layer(inputs)
            z = q.mean if use_means else q.rsample(shape if level == 0 else ())
            if use_means and level == 0 and shape:
                z = z.expand(*shape, *z.shape)
            log_posterior = log_posterior + q.log_prob(z)
            layers.append(z)
            posteriors.append(q)
            inputs = z
        return layers, posteriors, log_posterior

    def log_prior(self, layers: Sequence[Tensor]) -> Tensor:
        """log p(z_L) + Σ_l log p(z_l | z_{l+1}), [k, B] or [B]."""
        log_prior = self.top_prior.log_prob(layers[-1])
        for level, conditional in enumerate(self.generative):
            log_prior = log_prior + conditional(layers[level + 1]).log_prob(layers[level])
        return log_prior

    # -- the interface --------------------------------------------------------------------
    @override
    def sample_latents(
        self, x: Tensor, y: Tensor | None = None, num_samples: int | None = None
    ) -> LatentSamples:
        """k joint draws (z_1, …, z_L) ~ q(z|x); log p(z) and log q(z|x) are summed over all
        layers, so log w = log p(x|z_1) + log p(z) − log q(z|x) (Burda et al. eq. 8)."""
        layers, posteriors, log_posterior = self.infer(x, num_samples)
        observation = self.decode(layers[0], y)
        return LatentSamples(
            z=HierarchicalLatents(tuple(layers)),  # type: ignore[arg-type]
            posterior=posteriors[0],
            observation=observation,
            log_likelihood=observation.log_prob(x),
            log_prior=self.log_prior(layers),
            log_posterior=log_posterior,
        )

    @override
    def log_posterior_stopped(
        self, samples: LatentSamples, x: Tensor, y: Tensor | None = None
    ) -> Tensor:
        """Refused: each layer's q(z_l|z_(l−1)) has parameters that depend on the layer below,
        so stopping them would also cut the path derivative through that layer."""
        raise MissingCapability(
            f"{type(self).__name__} cannot score its layers under q with stopped parameters "
            "(log_posterior_stopped), which objective.gradient=stl|dreg and objective=piwae "
            "need: use objective.gradient=reparam with objective=elbo, iwae, miwae or ciwae"
        )

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z_1|x), the bottom layer's posterior (batch [B], event [d_1])."""
        return self.inference[0](x.flatten(-EVENT_DIMS))

    def layer_codes(self, x: Tensor) -> list[Distribution]:
        """q of every layer, bottom first, each conditioned on the means of the layers it
        reads (for per-layer active units)."""
        return self.infer(x, None, use_means=True)[1]

    @override
    def decode(self, z: Tensor | HierarchicalLatents, y: Tensor | None = None) -> ImageDistribution:
        """p(x|z_1) for bottom-layer codes [..., d_1] (or a :class:`HierarchicalLatents`)."""
        bottom = z.bottom if isinstance(z, HierarchicalLatents) else z
        leading = bottom.shape[:-1]
        out = self.decoder(in_dtype_of(self.decoder, bottom.reshape(-1, self.latent_dim)))
        return self.likelihood.observation(out.reshape(*leading, *out.shape[-EVENT_DIMS:]))

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Ancestral sampling z_L ~ p(z_L), z_l ~ p(z_l|z_{l+1}); returns E[x|z_1]."""
        with drawing_with(generator):
            z = self.top_prior.sample(num, y)
            for conditional in reversed(self.generative):
                z = conditional(z).sample()
        return self.decode(z, y).mean
