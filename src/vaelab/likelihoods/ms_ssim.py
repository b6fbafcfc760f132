"""The MS-SSIM reconstruction loss (Snell, Ridgeway, Liao, Roads, Mozer & Zemel 2017,
"Learning to Generate Images with Perceptual Similarity Metrics", ICIP), on torchmetrics'
multi-scale SSIM (Wang, Simoncelli & Bovik 2003, eq. 7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from vaelab.errors import VaelabError
from vaelab.likelihoods.reconstruction_loss import ReconstructionLoss
from vaelab.schema import PositiveFloat, PositiveInt, checked_arguments

#: Wang et al.'s (2003, §3.2) exponents of the five scales, finest first
WANG_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(sigma: float) -> int:
    """The side of torchmetrics' Gaussian window for ``sigma``: 2·⌊3.5σ + 0.5⌋ + 1 (11 for
    Wang et al.'s σ = 1.5)."""
    return int(3.5 * sigma + 0.5) * 2 + 1


def scales_that_fit(side: int, sigma: float) -> int:
    """The most scales S (≤ 5) torchmetrics' MS-SSIM takes on images of ``side`` pixels with the
    Gaussian window of ``sigma`` (w pixels): 2^S ≤ side and side // max(1, S − 1)² > w − 1
    (its checks), and the coarsest scale, side // 2^(S−1), wider than the window's reflected
    half (w − 1)/2; 0 if not even one fits."""
    window = gaussian_window(sigma)
    fitting = [
        scales
        for scales in range(1, len(WANG_BETAS) + 1)
        if 2**scales <= side
        and side // max(1, scales - 1) ** 2 > window - 1
        and side // 2 ** (scales - 1) > (window - 1) // 2
    ]
    return max(fitting, default=0)


def betas_for(scales: int) -> tuple[float, ...]:
    """Wang et al.'s exponents of the ``scales`` finest scales, rescaled to sum to 1 as the
    five do (the weights of the scales an image too small for five keeps)."""
    kept = WANG_BETAS[:scales]
    return tuple(beta / sum(kept) for beta in kept)


@checked_arguments("model.likelihood")
class MSSSIMLoss(ReconstructionLoss):
    """L(x, x̂) = weight · (1 − MS-SSIM(x̂, x)) per image, as Snell et al. (2017, §3) train a
    VAE on MS-SSIM in place of the pixel-wise likelihood; torchmetrics computes MS-SSIM with
    data range 1 (pictures in [0, 1]).

    Small images take fewer than the five scales of Wang et al.'s 256-pixel images: with their
    Gaussian window σ = 1.5 (11 pixels), ``scales`` null takes the most that fit
    (:func:`scales_that_fit`): 2 on 28×28 MNIST (28 and 14 pixels); 8×8 digits need σ ≤ 0.5
    (2 scales). Wang et al.'s exponents of the scales kept are rescaled to sum to 1.
    ``normalize=simple`` maps each scale's term to (s + 1)/2 ≥ 0 before the powers
    (torchmetrics' option for training: raw contrast terms can
    be negative, whose fractional powers are NaN; ``relu`` clips them, zeroing the gradient
    of a blank decoder). MS-SSIM is 1 for x̂ = x whichever is chosen, so the loss is 0 there.
    ``weight`` scales the loss against the KL (null: the number of values C·H·W of the data's
    image shape, so the loss is on the scale of a per-pixel sum). A loss, not a normalised
    likelihood.
    """

    def __init__(
        self,
        weight: PositiveFloat | None = None,
        sigma: PositiveFloat = 1.5,
        scales: PositiveInt | None = None,
        normalize: Literal["simple", "relu"] | None = "simple",
    ) -> None:
        super().__init__()
        self.requested_weight = None if weight is None else float(weight)
        self.weight = 1.0 if weight is None else float(weight)  # set from the image in setup
        self.sigma = float(sigma)
        self.requested_scales = None if scales is None else int(scales)
        self.normalize = normalize
        self.betas: tuple[float, ...] = betas_for(self.requested_scales or len(WANG_BETAS))

    def setup(self, input_shape: Sequence[int]) -> None:
        side = min(int(size) for size in input_shape[-2:])
        fit = scales_that_fit(side, self.sigma)
        scales = self.requested_scales or fit
        if fit == 0 or scales > fit:
            raise VaelabError(
                f"MS-SSIM with sigma={self.sigma} (a {gaussian_window(self.sigma)}-pixel "
                f"window) fits {fit} scales on {side}-pixel images, fewer than "
                f"{max(scales, 1)}: use a smaller model.likelihood.sigma or "
                "model.likelihood.scales=null (the most that fit)"
            )
        self.betas = betas_for(scales)
        self.weight = self.requested_weight or float(math.prod(int(n) for n in input_shape))

    def similarity(self, reconstruction: Tensor, x: Tensor) -> Tensor:
        """MS-SSIM of each picture [N, C, H, W] against its target: [N]. On a CPU, oneDNN is
        off for the call: its backward of the one-channel Gaussian window was 4–5× slower than
        PyTorch's own convolution (a training step of batch 100 on MNIST)."""
        previous = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = previous and reconstruction.device.type != "cpu"
        try:
            return self._torchmetrics_ms_ssim(reconstruction, x)
        finally:
            torch.backends.mkldnn.enabled = previous

    def _torchmetrics_ms_ssim(self, reconstruction: Tensor, x: Tensor) -> Tensor:
        return multiscale_structural_similarity_index_measure(
            reconstruction,
            x,
            kernel_size=gaussian_window(self.sigma),
            sigma=self.sigma,
            betas=self.betas,
            data_range=1.0,
            normalize=self.normalize,
            reduction="none",
        )

    def loss(self, reconstruction: Tensor, x: Tensor) -> Tensor:
        return self.weight * (1 - self.similarity(reconstruction, x.to(reconstruction.dtype)))

    def extra_repr(self) -> str:
        return f"weight={self.weight}, sigma={self.sigma}, betas={self.betas}"
