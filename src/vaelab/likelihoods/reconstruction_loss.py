"""A reconstruction loss in p(x|z)'s place: the base of the MS-SSIM, LogCosh and
feature-perceptual terms researchers swap in for a likelihood (PyTorch-VAE, pythae).

Such a term is a loss L(x, x̂) of the input and the decoder's picture x̂ = σ(decoder output),
not a normalised density: ``log_prob`` returns −L so that the ELBO engine's ``recon`` is the
loss, and ``is_normalised = False`` tells the module to log no bound (recon + β·KL is a
regularised loss, not −ELBO) and ``vaelab-eval`` to report no IW-NLL or bits/dim.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import EVENT_DIMS, Likelihood


class ReconstructionLoss(Likelihood):
    """L(x, x̂) per image [...], with x̂ = σ(decoder output) in [0, 1]; subclasses define
    :meth:`loss` on pictures [N, C, H, W] → [N]."""

    params_per_channel = 1
    is_normalised = False

    def loss(self, reconstruction: Tensor, x: Tensor) -> Tensor:
        """The loss of each picture [N, C, H, W] against its target: [N]."""
        raise NotImplementedError

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:  # noqa: ARG002
        raise VaelabError(
            f"{type(self).__name__} is a reconstruction loss, not a distribution over pixels: "
            "it has a picture (the decoder's mean) but no samples or densities"
        )

    def mean(self, decoder_output: Tensor) -> Tensor:
        return torch.sigmoid(decoder_output.float())

    def log_prob(self, decoder_output: Tensor, x: Tensor) -> Tensor:
        """−L(x, x̂) per image, for decoder outputs [..., C, H, W] (k samples of a batch
        included): not a log-density (module doc)."""
        reconstruction = self.mean(decoder_output)
        target = x.float()
        if reconstruction.shape != target.shape:  # [k, B, C, H, W] against a batch [B, C, H, W]
            reconstruction, target = torch.broadcast_tensors(reconstruction, target)
        leading = reconstruction.shape[:-EVENT_DIMS]
        image = reconstruction.shape[-EVENT_DIMS:]
        flat = self.loss(reconstruction.reshape(-1, *image), target.reshape(-1, *image))
        return -flat.reshape(leading)
