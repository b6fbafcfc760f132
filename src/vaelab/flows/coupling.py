"""Affine coupling layers (RealNVP, Dinh et al. 2017, eqs. 4–6 and the masked form eq. 9)
and their stack with alternating masks."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.distributions import Transform

from vaelab.flows.base import LATENT_VECTORS, as_dtype_of
from vaelab.schema import NonNegativeInt, PositiveInt, checked_arguments


@checked_arguments("model.posterior")
class CouplingNetwork(nn.Module):
    """(s, t) = NN(b ⊙ z, h): an MLP with ELU activations on the kept half of z (and the
    context h, when there is one); its output layer starts at zero (s = t = 0)."""

    def __init__(
        self,
        latent_dim: PositiveInt,
        hidden_dims: Sequence[PositiveInt],
        context_dim: NonNegativeInt,
    ) -> None:
        super().__init__()
        sizes = [latent_dim + context_dim, *(int(w) for w in hidden_dims)]
        layers: list[nn.Module] = []
        for fan_in, fan_out in pairwise(sizes):
            layers += [nn.Linear(fan_in, fan_out), nn.ELU()]
        last = nn.Linear(sizes[-1], 2 * latent_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.layers = nn.Sequential(*layers, last)

    def forward(self, kept: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs = kept if context is None else torch.cat([kept, context], -1)
        raw_log_scale, shift = self.layers(as_dtype_of(self, inputs)).float().chunk(2, -1)
        return raw_log_scale, shift


class AffineCouplingTransform(Transform):
    """The affine coupling layer of RealNVP (Dinh et al. 2017, eqs. 4–6, masked form eq. 9):
    y = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t), (s, t) = NN(b ⊙ x [, h]), log |det| = Σ (1 − b) ⊙ s.

    s = scale ⊙ tanh(raw s) with a learned per-dimension ``scale`` (RealNVP's tanh with a
    learned scale, their §4.1) keeps each layer's log-scale bounded. Both directions cost one
    network pass.
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(
        self, network: CouplingNetwork, mask: Tensor, scale: Tensor, context: Tensor | None
    ) -> None:
        super().__init__(cache_size=1)
        self.network = network
        self.mask = mask
        self.scale = scale
        self.context = context
        self._last_log_det: tuple[Tensor, Tensor] | None = None

    def _log_scale_and_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        context = self.context
        if context is not None:
            context = context.expand(*kept.shape[:-1], context.shape[-1])
        raw_log_scale, shift = self.network(kept, context)
        free = 1.0 - self.mask
        return free * self.scale * torch.tanh(raw_log_scale), free * shift

    def _call(self, x: Tensor) -> Tensor:
        log_scale, shift = self._log_scale_and_shift(self.mask * x)
        self._last_log_det = (x, log_scale.sum(-1))
        return x * torch.exp(log_scale) + shift

    def _inverse(self, y: Tensor) -> Tensor:
        log_scale, shift = self._log_scale_and_shift(self.mask * y)
        return (y - shift) * torch.exp(-log_scale)

    # torch's Transform interface passes y too; these log-determinants need only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        if self._last_log_det is not None and self._last_log_det[0] is x:
            return self._last_log_det[1]
        return self._log_scale_and_shift(self.mask * x)[0].sum(-1)


def alternating_masks(latent_dim: int, num_flows: int) -> Tensor:
    """[K, D] 0/1 masks b_k: layer k keeps the coordinates j with (j + k) even (RealNVP's
    alternating pattern, Dinh et al. 2017, §3.4), so consecutive layers update each other's."""
    index = torch.arange(latent_dim)
    return torch.stack([((index + k) % 2 == 0).float() for k in range(num_flows)])


@checked_arguments("model.posterior")
class AffineCouplingStack(nn.Module):
    """K affine coupling layers with alternating masks, optionally conditioned on a context
    vector (the flow of ``posterior=affine_coupling`` and ``prior=flow``)."""

    def __init__(
        self,
        latent_dim: PositiveInt,
        num_flows: PositiveInt,
        hidden_dims: Sequence[PositiveInt],
        context_dim: NonNegativeInt,
    ) -> None:
        super().__init__()
        self.register_buffer("masks", alternating_masks(latent_dim, num_flows), persistent=False)
        self.networks = nn.ModuleList(
            CouplingNetwork(latent_dim, hidden_dims, context_dim) for _ in range(num_flows)
        )
        self.scales = nn.Parameter(torch.ones(num_flows, latent_dim))

    def transforms(self, context: Tensor | None) -> list[Transform]:
        return [
            AffineCouplingTransform(network, mask, scale.float(), context)
            for network, mask, scale in zip(self.networks, self.masks, self.scales, strict=True)
        ]
