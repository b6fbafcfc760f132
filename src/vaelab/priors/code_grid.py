"""Priors p(k) over the VQ-VAE's (h, w) grid of code indices (van den Oord, Vinyals &
Kavukcuoglu 2017, §3.1–3.2): uniform in stage 1, a gated PixelCNN (van den Oord et al. 2016)
in stage 2."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, constraints

from vaelab.errors import VaelabError
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.priors.base import Prior
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("model")
class CodeGridPrior(Prior):
    """p(k) over (h, w) grids of code indices, read by the interface as a prior over flat
    code maps z (``log_prob`` maps z to its nearest code indices; every z the model draws is
    exactly a grid of codes). ``samples``: whether :meth:`sample_indices` draws codes (a
    learned prior) or refuses (the uniform prior of stage 1). Unconditional; the model
    builds it directly (no :meth:`Prior.setup`)."""

    samples: ClassVar[bool] = True

    def __init__(self, grid_shape: tuple[int, int], num_codes: PositiveInt) -> None:
        super().__init__()
        self.grid_shape = tuple(grid_shape)
        self.num_codes = int(num_codes)
        self._indices_of: Callable[[Tensor], Tensor] | None = None
        self._codes_of: Callable[[Tensor], Tensor] | None = None
        # not checkpointed: only tells which device the model is on
        self.register_buffer("device_anchor", torch.zeros(0), persistent=False)

    def attach(
        self, indices_of: Callable[[Tensor], Tensor], codes_of: Callable[[Tensor], Tensor]
    ) -> None:
        """The model's maps between flat code maps and index grids (not submodules)."""
        self._indices_of, self._codes_of = indices_of, codes_of

    def log_prob_of_indices(self, indices: Tensor) -> Tensor:
        """log p(k) [...] of index grids [..., h, w], in nats."""
        raise NotImplementedError

    def sample_indices(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def log_prob(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """log p(z) of flat code maps [..., D·h·w]: the mass of their code-index grid."""
        return self.log_prob_of_indices(self._indices_of(z))

    def sample(
        self,
        num: int,
        y: Tensor | None = None,  # noqa: ARG002 - the code-grid priors are unconditional
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``num`` flat code maps z ~ p(z): [num, D·h·w]."""
        return self._codes_of(self.sample_indices(num, generator))

    def distribution(self) -> Distribution:
        """p(k) as a distribution over index grids (event (h, w))."""
        raise NotImplementedError


class UniformCodePrior(CodeGridPrior):
    """Stage 1: p(k) uniform, log p(k) = −h·w·log K (the paper's constant KL, §3.1). It is
    not a model of the codes: sampling from it is refused (train the PixelCNN prior)."""

    samples = False

    def distribution(self) -> Distribution:
        logits = torch.zeros(*self.grid_shape, self.num_codes, device=self.device_anchor.device)
        return Independent(Categorical(logits=logits), 2)

    def log_prob_of_indices(self, indices: Tensor) -> Tensor:
        positions = math.prod(self.grid_shape)
        return torch.full(
            indices.shape[:-2], -positions * math.log(self.num_codes), device=indices.device
        )

    # the prior interface: a uniform prior over codes refuses whatever is asked
    def sample_indices(self, num: int, generator: torch.Generator | None = None) -> Tensor:  # noqa: ARG002
        raise VaelabError(
            "a uniform prior over codes is not a model of them: it has nothing to sample "
            "(train a PixelCNNCodePrior on the codes)"
        )


@checked_arguments("model")
class PixelCNNCodePrior(CodeGridPrior):
    """Stage 2: p(k) = Π_i p(k_i | k_<i), a gated PixelCNN over the code grid (van den Oord et
    al. 2016; the VQ-VAE paper's prior, §3.2)."""

    def __init__(
        self, grid_shape: tuple[int, int], num_codes: PositiveInt, net: GatedPixelCNN
    ) -> None:
        super().__init__(grid_shape, num_codes)
        if net.num_codes != self.num_codes:
            raise VaelabError(
                f"the prior network models {net.num_codes} codes but the codebook has "
                f"{self.num_codes}"
            )
        self.net = net

    def log_prob_of_indices(self, indices: Tensor) -> Tensor:
        leading = indices.shape[:-2]
        return self.net.log_prob(indices.reshape(-1, *self.grid_shape)).reshape(leading)

    def sample_indices(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        return self.net.sample(num, self.grid_shape, generator)

    def distribution(self) -> Distribution:
        return PixelCNNDistribution(self)


class PixelCNNDistribution(Distribution):
    """The PixelCNN prior as a torch Distribution over index grids (event (h, w))."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.nonnegative_integer

    def __init__(self, prior: PixelCNNCodePrior) -> None:
        self.prior = prior
        super().__init__(event_shape=torch.Size(prior.grid_shape), validate_args=False)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.prior.log_prob_of_indices(value)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        num = math.prod(sample_shape)
        return self.prior.sample_indices(num).reshape(*sample_shape, *self.prior.grid_shape)
