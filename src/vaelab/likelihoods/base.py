"""Interface of an observation model p_θ(x|z)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, constraints

EVENT_DIMS = 3  # an image event is (C, H, W): log-probs are summed over all three


class Likelihood(nn.Module):
    """p_θ(x|z) for images of shape (C, H, W).

    The decoder outputs ``params_per_channel · C`` channels; :meth:`distribution` turns them
    into an :class:`~torch.distributions.Independent` distribution whose event is the whole
    image, so ``log_prob`` is a true log-density/mass in nats summed over pixels.
    Subclasses may hold learnable parameters (e.g. a global σ), hence ``nn.Module``; those
    whose parameters depend on the image shape create them in :meth:`setup`.
    """

    #: how many decoder channels one image channel needs (1: mean only, 2: mean and scale)
    params_per_channel: int = 1
    #: True for densities over continuous pixel values (bits/dim is then a density too)
    is_continuous: bool = False
    #: False for a reconstruction loss in p(x|z)'s place (MS-SSIM, LogCosh, perceptual):
    #: ``log_prob`` is then −loss, not a normalised log-density, so −(recon + KL) bounds
    #: nothing (no ELBO, IW-NLL or bits/dim is logged or reported for it)
    is_normalised: bool = True

    def setup(self, input_shape: Sequence[int]) -> None:
        """Called once with the data's (C, H, W) before the networks are built; a no-op
        unless the likelihood owns per-pixel parameters."""

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        """The per-pixel distribution (batch shape [..., C, H, W])."""
        raise NotImplementedError

    def distribution(self, decoder_output: Tensor) -> Distribution:
        """p(x|z) as one distribution over whole images (event shape (C, H, W))."""
        return Independent(self.pixel_distribution(decoder_output), EVENT_DIMS, validate_args=False)

    def log_prob(self, decoder_output: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over pixels, computed in float32 even under autocast."""
        return self.distribution(decoder_output.float()).log_prob(x.float())

    def mean(self, decoder_output: Tensor) -> Tensor:
        """E[x|z], the picture shown for reconstructions and samples."""
        return self.pixel_distribution(decoder_output.float()).mean

    def observation(self, decoder_output: Tensor) -> ImageDistribution:
        """p(x|z) for decoder outputs [..., k·C, H, W], as a distribution over whole images."""
        return ImageDistribution(self, decoder_output)

    @staticmethod
    def split_channels(decoder_output: Tensor, parts: int) -> tuple[Tensor, ...]:
        """Split [..., parts·C, H, W] into ``parts`` tensors of [..., C, H, W]."""
        return torch.chunk(decoder_output, parts, dim=-EVENT_DIMS)


class ImageDistribution(Distribution):
    """p(x|z) over whole images (event shape (C, H, W)), backed by a :class:`Likelihood` and
    the decoder's output. ``log_prob`` and ``mean`` go through the likelihood's own (fast,
    float32) paths; anything else (sampling, entropy, ...) through the torch.distributions
    object of :meth:`Likelihood.distribution`."""

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    support = constraints.real

    def __init__(self, likelihood: Likelihood, decoder_output: Tensor) -> None:
        self.likelihood = likelihood
        self.decoder_output = decoder_output
        image_shape = decoder_output.shape[-EVENT_DIMS:]
        channels = image_shape[0] // likelihood.params_per_channel
        super().__init__(
            batch_shape=decoder_output.shape[:-EVENT_DIMS],
            event_shape=torch.Size((channels, *image_shape[1:])),
            validate_args=False,
        )

    @property
    def torch_distribution(self) -> Distribution:
        return self.likelihood.distribution(self.decoder_output.float())

    def log_prob(self, value: Tensor) -> Tensor:
        return self.likelihood.log_prob(self.decoder_output, value)

    @property
    def mean(self) -> Tensor:
        return self.likelihood.mean(self.decoder_output)

    @property
    def variance(self) -> Tensor:
        return self.torch_distribution.variance

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return self.torch_distribution.sample(sample_shape)
