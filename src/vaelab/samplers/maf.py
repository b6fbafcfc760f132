"""``sampler=maf``: a masked autoregressive flow trained on the codes (Papamakarios et al.
2017, "Masked Autoregressive Flow for Density Estimation", eqs. 2–5)."""

from __future__ import annotations

from collections.abc import Sequence

from torch.distributions import Transform

from vaelab.samplers.flow_density import FlowDensitySampler
from vaelab.schema import PositiveFloat, PositiveInt, checked_arguments


@checked_arguments("sampler")
class MaskedAutoregressiveFlowSampler(FlowDensitySampler):
    """MAF: each step maps a code x to noise u_i = (x_i − μ_i(x_<i)) exp(−α_i(x_<i)) (their
    eq. 4, with the network reading x), so log q(x) = log N(u) + Σ_i log|∂u_i/∂x_i| takes one
    network pass per step (their eq. 5) and sampling takes D (the inverse). Here a step's
    network outputs (m, s) with u = m + exp(s) ⊙ x, the same family (m = −μ e^{−α}, s = −α):
    the IAF step of ``flows/iaf.py`` run from code to noise, inverted for sampling."""

    name = "maf"

    def __init__(
        self,
        num_flows: PositiveInt = 5,
        hidden_dims: Sequence[PositiveInt] = (128, 128),
        epochs: PositiveInt = 20,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__(num_flows, hidden_dims, epochs, batch_size, lr)

    def step_transforms(self) -> list[Transform]:
        # generative direction: the inverse of each code → noise step, last step first
        return [step.inv for step in reversed(self.autoregressive_steps())]
