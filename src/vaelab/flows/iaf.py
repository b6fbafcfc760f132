"""One inverse autoregressive flow step (Kingma et al. 2016, eqs. 10–11 and Algorithm 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Transform

from vaelab.flows.base import LATENT_VECTORS
from vaelab.flows.made import MADE


class InverseAutoregressiveTransform(Transform):
    """One IAF step (Kingma et al. 2016): (m, s) = MADE(z, h), then

    - ``affine``: z_new = m + exp(s) ⊙ z (their eq. 10 with σ = exp s; the identity at s = m = 0);
    - ``gated``: σ = sigmoid(s + gate_bias), z_new = σ ⊙ z + (1 − σ) ⊙ m (the numerically stable
      update of their Algorithm 1; ``gate_bias`` > 0 starts it close to the identity).

    The Jacobian is triangular, so log |det| = Σ_i log σ_i (their eq. 11). The inverse takes D
    passes (each fixes one more coordinate); sampling and the density of a sample take one.
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(
        self, network: MADE, context: Tensor | None, gated: bool, gate_bias: float
    ) -> None:
        super().__init__(cache_size=1)
        self.network = network
        self.context = context
        self.gated = gated
        self.gate_bias = gate_bias
        self._last_log_det: tuple[Tensor, Tensor] | None = None

    def _shift_and_log_scale(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(shift, scale, log scale) with z_new = shift + scale ⊙ z."""
        context = self.context
        if context is not None:
            context = context.expand(*x.shape[:-1], context.shape[-1])
        m, s = self.network(x, context)
        if not self.gated:
            return m, torch.exp(s), s
        gate_input = s + self.gate_bias
        gate = torch.sigmoid(gate_input)
        return (1.0 - gate) * m, gate, F.logsigmoid(gate_input)

    def _call(self, x: Tensor) -> Tensor:
        shift, scale, log_scale = self._shift_and_log_scale(x)
        self._last_log_det = (x, log_scale.sum(-1))
        return shift + scale * x

    def _inverse(self, y: Tensor) -> Tensor:
        x = torch.zeros_like(y)
        for _ in range(y.shape[-1]):  # coordinate i is exact after pass i
            shift, scale, _ = self._shift_and_log_scale(x)
            x = (y - shift) / scale
        return x

    # torch's Transform interface passes y too; these log-determinants need only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        if self._last_log_det is not None and self._last_log_det[0] is x:
            return self._last_log_det[1]
        return self._shift_and_log_scale(x)[2].sum(-1)
