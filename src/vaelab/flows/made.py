"""MADE, the masked autoregressive network inside an IAF step (Germain et al. 2015, §4;
Kingma et al. 2016, Algorithm 1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaelab.errors import VaelabError
from vaelab.flows.base import as_dtype_of
from vaelab.schema import NonNegativeInt, PositiveInt, checked_arguments


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask [out, in]."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


@checked_arguments("model.posterior")
class MADE(nn.Module):
    """An autoregressive network (MADE, Germain et al. 2015, §4): outputs (shift m, raw scale
    s) ∈ R^D × R^D where m_i and s_i depend only on the inputs before i in the order.

    Input i has degree d(i) ∈ {1, …, D} (``reverse`` flips the order: stacked IAF steps
    alternate it, Kingma et al. 2016, §4); hidden unit k gets degree k mod D ∈ {0, …, D − 1};
    a weight is kept when the receiving unit's degree is ≥ the sender's (hidden layers) or
    > it (the output). A context vector h enters the first hidden layer unmasked (the IAF
    AR-NN's extra input h, Kingma et al. 2016, Algorithm 1); degree-0 units see only h, so
    even z₁ (or a 1-D latent) is shifted and scaled by a function of h. ELU activations;
    the output layer starts at zero (m = s = 0).
    """

    def __init__(
        self,
        latent_dim: PositiveInt,
        hidden_dims: Sequence[PositiveInt],
        context_dim: NonNegativeInt,
        reverse: bool,
    ) -> None:
        super().__init__()
        if not hidden_dims:
            raise VaelabError("a MADE needs at least one hidden layer: set hidden_dims")
        self.latent_dim = latent_dim
        degrees = torch.arange(1, latent_dim + 1)
        input_degrees = degrees.flip(0) if reverse else degrees
        first_width = int(hidden_dims[0])
        self.context = nn.Linear(context_dim, first_width) if context_dim else None
        previous = input_degrees
        layers = []
        for width in hidden_dims:
            hidden = torch.arange(int(width)) % latent_dim
            layers.append(MaskedLinear(hidden[:, None] >= previous[None, :]))
            previous = hidden
        self.hidden = nn.ModuleList(layers)
        # two heads (m, s), each connected like the inputs' degrees
        output_degrees = torch.cat([input_degrees, input_degrees])
        self.output = MaskedLinear(output_degrees[:, None] > previous[None, :])
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, z: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        """(m, s), each shaped like ``z`` [..., D]; ``context`` [B', H] broadcasts to z."""
        out = self.hidden[0](as_dtype_of(self, z))
        if self.context is not None:
            out = out + self.context(as_dtype_of(self, context))
        out = F.elu(out)
        for layer in self.hidden[1:]:
            out = F.elu(layer(out))
        shift, raw_scale = self.output(out).float().chunk(2, dim=-1)
        return shift, raw_scale
