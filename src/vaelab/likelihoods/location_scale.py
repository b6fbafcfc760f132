"""Shared machinery of the location–scale likelihoods (Gaussian, Laplace): how σ is given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.likelihoods.base import Likelihood
from vaelab.schema import NonNegativeFloat, PositiveFloat, checked_arguments

#: fixed: σ is a constant; learned_global: one learned log σ (scalar or per pixel);
#: learned_per_pixel: the decoder outputs a log-scale for every pixel of every image
Variance = Literal["fixed", "learned_global", "learned_per_pixel"]
MeanActivation = Literal["identity", "sigmoid"]
GlobalShape = Literal["scalar", "per_pixel"]
ScaleOutput = Literal["log_scale", "log_var"]


@checked_arguments("model.likelihood")
class LocationScaleLikelihood(Likelihood):
    """x_i ~ F((x_i − μ_i)/σ_i)/σ_i with μ from the decoder and σ set by ``variance``.

    * ``fixed``: σ = ``scale`` everywhere (σ = 1 Gaussian is seed 002's "I-Gaussian").
    * ``learned_global``: σ = ``min_scale`` + exp(s) with one learned s (``global_shape``
      ``scalar``) or one per pixel (``per_pixel``, created in :meth:`setup`), initialised
      so that σ = ``scale``.
    * ``learned_per_pixel``: the decoder outputs 2·C channels, the mean's and s's; s is
      log σ (``scale_output=log_scale``, seed 003) or log σ² (``log_var``, seed 002) and
      σ = ``min_scale`` + exp(log σ).

    ``min_scale`` floors every learned σ: without it the density is unbounded (σ → 0 on
    pixels the mean fits exactly, seed 002's warning) and the loss runs to −∞ / NaN.
    ``mean_activation``: ``identity`` (seed 002's linear means) or ``sigmoid`` (means in
    [0, 1], seed 003). Subclasses name the distribution in :meth:`base_distribution`.
    """

    is_continuous = True

    def __init__(
        self,
        variance: Variance = "fixed",
        scale: PositiveFloat = 1.0,
        min_scale: NonNegativeFloat = 1e-2,
        mean_activation: MeanActivation = "identity",
        global_shape: GlobalShape = "scalar",
        scale_output: ScaleOutput = "log_scale",
    ) -> None:
        super().__init__()
        if variance != "fixed" and scale <= min_scale:
            raise ValueError(
                f"model.likelihood.scale must be > min_scale={min_scale} when σ is learned, "
                f"got {scale}"
            )
        self.variance = variance
        self.scale = float(scale)
        self.min_scale = float(min_scale)
        self.mean_activation = mean_activation
        self.global_shape = global_shape
        self.scale_output = scale_output
        self.params_per_channel = 2 if variance == "learned_per_pixel" else 1
        self.log_scale: nn.Parameter | None = None
        if variance == "learned_global" and global_shape == "scalar":
            self.log_scale = nn.Parameter(self._initial_log_scale(()))

    def _initial_log_scale(self, shape: Sequence[int]) -> Tensor:
        """s with min_scale + exp(s) = scale."""
        return torch.full(tuple(shape), math.log(self.scale - self.min_scale))

    def setup(self, input_shape: Sequence[int]) -> None:
        if self.variance == "learned_global" and self.global_shape == "per_pixel":
            self.log_scale = nn.Parameter(self._initial_log_scale(tuple(input_shape)))

    def base_distribution(self, loc: Tensor, scale: Tensor) -> Distribution:
        """The per-pixel location–scale distribution."""
        raise NotImplementedError

    def loc_and_scale(self, decoder_output: Tensor) -> tuple[Tensor, Tensor]:
        """μ [..., C, H, W] and σ (broadcastable to μ) from the decoder output."""
        if self.variance == "learned_per_pixel":
            raw_loc, raw_scale = self.split_channels(decoder_output, 2)
            log_scale = raw_scale if self.scale_output == "log_scale" else 0.5 * raw_scale
            scale = self.min_scale + torch.exp(log_scale)
        elif self.variance == "learned_global":
            if self.log_scale is None:
                raise RuntimeError(
                    "global_shape=per_pixel needs setup(input_shape) first (the VAE calls it)"
                )
            raw_loc = decoder_output
            scale = self.min_scale + torch.exp(self.log_scale)
        else:
            raw_loc = decoder_output
            scale = torch.full((), self.scale, device=decoder_output.device)
        loc = torch.sigmoid(raw_loc) if self.mean_activation == "sigmoid" else raw_loc
        return loc, scale.expand_as(loc)

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        return self.base_distribution(*self.loc_and_scale(decoder_output))
