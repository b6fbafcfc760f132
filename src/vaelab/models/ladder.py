"""The Ladder VAE (Sønderby, Raiko, Maaløe, Sønderby & Winther 2016): the generative model of a
hierarchical VAE with a top-down inference model that shares it.

A deterministic bottom-up pass d_1 = MLP(x), d_l = MLP(d_{l−1}) gives each layer an
approximate likelihood N(μ̂_l, σ̂²_l). Inference then runs top-down like generation:
q(z_L|x) = N(μ̂_L, σ̂²_L), and for l < L, q(z_l|z_{l+1}, x) is the precision-weighted
combination of N(μ̂_l, σ̂²_l) with the generative p(z_l|z_{l+1}) = N(μ_p, σ²_p) (§2.2,
eqs. 18–19). Sønderby et al. train it with KL warm-up (§2.3: β rises linearly from 0 to 1):
``beta=linear_warmup``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal
from typing_extensions import override

from vaelab.likelihoods.base import EVENT_DIMS
from vaelab.models.hierarchical import GaussianLayer, HierarchicalVAE


@dataclass
class GaussianParameters:
    """Mean and variance of a diagonal Gaussian, [..., d] each."""

    mean: Tensor
    variance: Tensor

    def distribution(self) -> Distribution:
        return Independent(
            Normal(self.mean, self.variance.sqrt(), validate_args=False), 1, validate_args=False
        )


def precision_weighted(first: GaussianParameters, second: GaussianParameters) -> GaussianParameters:
    """The normalised product of two Gaussian densities (Sønderby et al. 2016, eqs. 18–19):
    σ² = 1 / (σ̂⁻² + σ_p⁻²), μ = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ²."""
    first_precision, second_precision = first.variance.reciprocal(), second.variance.reciprocal()
    variance = (first_precision + second_precision).reciprocal()
    mean = (first.mean * first_precision + second.mean * second_precision) * variance
    return GaussianParameters(mean, variance)


class LadderVAE(HierarchicalVAE):
    """A :class:`~vaelab.models.hierarchical.HierarchicalVAE`'s generative model with the
    Ladder VAE's inference (Sønderby et al. 2016, §2.2, Fig. 1b).

    ``hidden_dims[l]`` are the deterministic bottom-up widths between d_{l−1} (the data for
    l = 0) and d_l, each ending in a linear (μ̂_l, log σ̂²_l) head; p(z_l|z_{l+1}) and p(x|z_1)
    are built as in the bottom-up hierarchy. The paper's MNIST model (five layers of
    64…4 units on 512…32 deterministic ones, batch normalisation, leaky ReLU) is a choice of
    ``latent_dims`` / ``hidden_dims`` / ``activation``; batch normalisation is not modelled.
    """

    def build_inference(self) -> nn.ModuleList:
        """The bottom-up pass: layer l reads the deterministic features of layer l−1."""
        layers: list[GaussianLayer] = []
        fan_in = math.prod(self.input_shape)
        for widths, size in zip(self.hidden_dims, self.latent_dims, strict=True):
            layer = GaussianLayer(fan_in, widths, size, self.activation, self.negative_slope)
            layers.append(layer)
            fan_in = layer.features
        return nn.ModuleList(layers)

    def bottom_up(self, x: Tensor) -> list[GaussianParameters]:
        """(μ̂_l, σ̂²_l) of every layer from the deterministic pass, bottom first, each [B, d_l]."""
        features = x.flatten(-EVENT_DIMS)
        estimates: list[GaussianParameters] = []
        for layer in self.inference:
            features = layer.body(features)
            mean, log_variance = torch.chunk(layer.head(features).float(), 2, dim=-1)
            estimates.append(GaussianParameters(mean, log_variance.exp()))
        return estimates

    def infer(
        self, x: Tensor, num_samples: int | None, use_means: bool = False
    ) -> tuple[list[Tensor], list[Distribution], Tensor]:
        """Top-down: z_L ~ N(μ̂_L, σ̂²_L), then z_l ~ the precision-weighted combination of
        N(μ̂_l, σ̂²_l) and p(z_l|z_{l+1}). Returns the samples and the q of each layer bottom
        first, and log q(z|x) summed over the layers."""
        shape = () if num_samples is None else (int(num_samples),)
        estimates = self.bottom_up(x)
        top = estimates[-1].distribution()
        z = top.mean if use_means else top.rsample(shape)
        if use_means and shape:
            z = z.expand(*shape, *z.shape)
        layers, posteriors = [z], [top]
        log_posterior = top.log_prob(z)
        for level in reversed(range(self.num_layers - 1)):
            prior = self.generative[level](z)  # p(z_l | z_{l+1})
            q = precision_weighted(
                estimates[level], GaussianParameters(prior.mean, prior.variance)
            ).distribution()
            z = q.mean if use_means else q.rsample()
            log_posterior = log_posterior + q.log_prob(z)
            layers.insert(0, z)
            posteriors.insert(0, q)
        return layers, posteriors, log_posterior

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z_1|x, z_2, …) with the upper layers at their means (the ladder's q(z_1|·)
        depends on the draw above it)."""
        return self.infer(x, None, use_means=True)[1][0]
