"""The VampPrior (Tomczak & Welling 2018, eq. 9): p(z) = (1/K) Σ_k q(z | u_k), the aggregate
posterior at K learned pseudo-inputs u_k."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, MixtureSameFamily
from torch.nn import functional as F

from vaelab.priors.base import Encoder, Prior
from vaelab.schema import Range, checked_arguments


@checked_arguments("model.prior")
class VampPrior(Prior):
    """K pseudo-inputs u_k of the data's shape, each a learned parameter clipped to the data
    range [0, 1] by a hard tanh (the paper's "hardtanh" non-linearity), initialised at
    ``init_mean`` + ``init_std`` · N(0, 1) (the paper's code: 0.05 and 0.01). The mixture is
    rebuilt from the current encoder at each call, so the prior follows q during training.
    KL(q || p) has no closed form: the ELBO uses a Monte-Carlo KL (chosen automatically)."""

    def __init__(
        self,
        num_pseudo_inputs: Annotated[int, Range(ge=1)] = 500,
        init_mean: float = 0.05,
        init_std: Annotated[float, Range(ge=0)] = 0.01,
    ) -> None:
        super().__init__()
        self.num_pseudo_inputs = int(num_pseudo_inputs)
        self.init_mean = float(init_mean)
        self.init_std = float(init_std)

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        initial = self.init_mean + self.init_std * torch.randn(self.num_pseudo_inputs, *input_shape)
        self.raw_pseudo_inputs = nn.Parameter(initial)
        # a bound method, not a submodule: the encoder belongs to the model that owns the prior
        self._encode = encode

    @property
    def pseudo_inputs(self) -> Tensor:
        """u_k ∈ [0, 1]^{C×H×W}: [K, C, H, W]."""
        return F.hardtanh(self.raw_pseudo_inputs, 0.0, 1.0)

    def distribution(self) -> Distribution:
        components = self._encode(self.pseudo_inputs)  # q(z | u_k), batch shape [K]
        uniform = torch.zeros(self.num_pseudo_inputs, device=self.raw_pseudo_inputs.device)
        return MixtureSameFamily(
            Categorical(logits=uniform, validate_args=False), components, validate_args=False
        )
