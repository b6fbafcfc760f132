"""A gated PixelCNN over a grid of categorical symbols (van den Oord et al. 2016, "Conditional
Image Generation with PixelCNN Decoders", §2.1–2.2, eq. 2 and Fig. 2): the VQ-VAE's learned
prior over its code grid."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaelab.schema import PositiveInt, Range, checked_arguments


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed 0/1 ``mask`` (same shape)."""

    def __init__(self, in_channels: int, out_channels: int, mask: Tensor, padding) -> None:
        super().__init__(in_channels, out_channels, tuple(mask.shape), padding=padding)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def vertical_mask(kernel_size: int) -> Tensor:
    """k×k kernel seeing the rows above the centre and the centre row (every column): the
    vertical stack at (i, j) sees rows ≤ i; it reaches the horizontal stack shifted down by
    one row, so there only rows < i."""
    mask = torch.ones(kernel_size, kernel_size)
    mask[kernel_size // 2 + 1 :] = 0
    return mask


def horizontal_mask(kernel_size: int, include_centre: bool) -> Tensor:
    """1×k kernel seeing the columns left of the centre, and the centre itself unless this is
    the first layer (mask type "A": a symbol never sees itself)."""
    mask = torch.ones(1, kernel_size)
    mask[0, kernel_size // 2 + int(include_centre) :] = 0
    return mask


def gate(pre_activation: Tensor) -> Tensor:
    """tanh(a) ⊙ σ(b) for the two halves (a, b) of the channels (eq. 2)."""
    values, gates = pre_activation.chunk(2, dim=1)
    return torch.tanh(values) * torch.sigmoid(gates)


def shift_down(x: Tensor) -> Tensor:
    """Move a map one row down (a zero row on top): row i then holds what row i − 1 held."""
    return F.pad(x, (0, 0, 1, 0))[..., :-1, :]


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack (Fig. 2): the vertical stack's
    pre-activation, shifted down, feeds the horizontal one through a 1×1 convolution; the
    horizontal stack has a residual connection except in the first layer."""

    def __init__(self, channels: int, kernel_size: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.vertical = MaskedConv2d(
            channels, 2 * channels, vertical_mask(kernel_size), padding=kernel_size // 2
        )
        self.horizontal = MaskedConv2d(
            channels,
            2 * channels,
            horizontal_mask(kernel_size, include_centre=not first),
            padding=(0, kernel_size // 2),
        )
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)

    def forward(self, vertical: Tensor, horizontal: Tensor) -> tuple[Tensor, Tensor]:
        vertical_pre = self.vertical(vertical)
        horizontal_pre = self.horizontal(horizontal) + self.vertical_to_horizontal(
            shift_down(vertical_pre)
        )
        horizontal_out = self.horizontal_out(gate(horizontal_pre))
        if not self.first:
            horizontal_out = horizontal_out + horizontal
        return gate(vertical_pre), horizontal_out


@checked_arguments("model.prior_net")
class GatedPixelCNN(nn.Module):
    """p(s) = Π_i p(s_i | s_<i) over an (h, w) grid of symbols s ∈ {0, …, K−1} in raster
    order: symbols are embedded, passed through ``layers`` gated layers (the first with mask
    type A) and a ReLU–1×1–ReLU–1×1 head to K logits per position. The output at (i, j) never
    depends on the symbols at or after (i, j) (tests check this with autograd)."""

    def __init__(
        self,
        num_codes: Annotated[int, Range(ge=2)],
        channels: PositiveInt = 64,
        layers: PositiveInt = 8,
        kernel_size: Annotated[int, Range(ge=3)] = 5,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:  # the masks need a centre
            raise ValueError(f"model.prior_net.kernel_size must be odd, got {kernel_size}")
        self.num_codes = int(num_codes)
        self.embedding = nn.Embedding(self.num_codes, channels)
        self.layers = nn.ModuleList(
            GatedLayer(channels, kernel_size, first=index == 0) for index in range(layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(),
            nn.Conv2d(channels, self.num_codes, 1),
        )

    def embed(self, symbols: Tensor) -> Tensor:
        """[B, h, w] symbols → [B, channels, h, w] features."""
        return self.embedding(symbols).permute(0, 3, 1, 2)

    def context(self, features: Tensor) -> Tensor:
        """[B, channels, h, w] embedded symbols → the last horizontal stack, whose (i, j)
        summarises the symbols before (i, j)."""
        vertical = horizontal = features
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal)
        return horizontal

    def logits_of_features(self, features: Tensor) -> Tensor:
        """[B, channels, h, w] embedded symbols → [B, K, h, w] logits of p(s_i | s_<i)."""
        return self.head(self.context(features))

    def forward(self, symbols: Tensor) -> Tensor:
        """[B, h, w] symbols → [B, K, h, w] logits."""
        return self.logits_of_features(self.embed(symbols))

    def log_prob(self, symbols: Tensor) -> Tensor:
        """log p(s) [B] in nats, summed over the grid."""
        logits = self(symbols).float()
        return -F.cross_entropy(logits, symbols, reduction="none").sum(dim=(-2, -1))

    @torch.no_grad()
    def sample(
        self, num: int, grid_shape: tuple[int, int], generator: torch.Generator | None = None
    ) -> Tensor:
        """``num`` grids s ~ p(s), one position at a time in raster order: [num, h, w]."""
        device = self.embedding.weight.device
        symbols = torch.zeros(num, *grid_shape, dtype=torch.long, device=device)
        for row in range(grid_shape[0]):
            for col in range(grid_shape[1]):
                probs = torch.softmax(self(symbols)[:, :, row, col].float(), dim=-1)
                symbols[:, row, col] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return symbols
