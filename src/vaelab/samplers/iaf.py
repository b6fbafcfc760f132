"""``sampler=iaf``: an inverse autoregressive flow as a density over the codes (Kingma et al.
2016, "Improved Variational Inference with Inverse Autoregressive Flow", eqs. 10–11, there a
posterior; here, as in pythae's IAF sampler, a density fitted to the training codes)."""

from __future__ import annotations

from collections.abc import Sequence

from torch.distributions import Transform

from vaelab.samplers.flow_density import FlowDensitySampler
from vaelab.schema import PositiveFloat, PositiveInt, checked_arguments


@checked_arguments("sampler")
class InverseAutoregressiveFlowSampler(FlowDensitySampler):
    """IAF: each step maps noise to a code, z_new = m(z) + exp(s(z)) ⊙ z with the network
    reading its input (their eq. 10), so sampling takes one pass per step and the density of a
    given code takes D (the inverse, ``flows/iaf.py``); log|det| = Σ_i s_i (their eq. 11).
    Training by maximum likelihood therefore pays D passes per step; MAF is the cheap one to
    train, IAF the cheap one to sample."""

    name = "iaf"

    def __init__(
        self,
        num_flows: PositiveInt = 5,
        hidden_dims: Sequence[PositiveInt] = (128, 128),
        epochs: PositiveInt = 5,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__(num_flows, hidden_dims, epochs, batch_size, lr)

    def step_transforms(self) -> list[Transform]:
        return list(self.autoregressive_steps())
