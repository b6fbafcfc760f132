"""A class-conditional Gaussian prior p(z | y) = N(μ_y, diag σ_y²): the conditional prior of
the CVAE (Sohn, Lee & Yan 2015, eq. 4, there p_θ(z|x) given the conditioning variable),
here given the class label y."""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    Normal,
)
from torch.nn import functional as F

from vaelab.priors.base import Encoder, Prior
from vaelab.schema import Range, checked_arguments


@checked_arguments("model.prior")
class ClassConditionalPrior(Prior):
    """p(z | y) = N(μ_y, diag σ_y²) with a learned mean and scale (softplus, floored at
    ``min_scale``) per class, all starting at N(0, I). A model holding it conditions on the
    class label (``num_classes`` comes from the data); the KL to a diagonal Gaussian q(z|x, y)
    is in closed form per dimension. Without labels, :meth:`distribution` is the marginal
    p(z) = (1/K) Σ_y p(z | y)."""

    conditions_on: ClassVar[str | None] = "classes"

    def __init__(
        self,
        num_classes: Annotated[int, Range(ge=2)] | None = None,
        min_scale: Annotated[float, Range(ge=0)] = 1e-3,
    ) -> None:
        super().__init__()
        self.num_classes = None if num_classes is None else int(num_classes)
        self.min_scale = float(min_scale)

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        if self.num_classes is None:
            raise ValueError(
                "prior=class_conditional needs the number of classes: build the model with "
                "the datamodule's data_info() (vaelab-train does)"
            )
        shape = (self.num_classes, self.latent_dim)
        self.means = nn.Parameter(torch.zeros(shape))
        # softplus(0.5413) = 1: every class starts at unit scales
        self.raw_scales = nn.Parameter(torch.full(shape, 0.5413))

    def _gaussians(self, index: Tensor | slice) -> Independent:
        scales = F.softplus(self.raw_scales[index].float()) + self.min_scale
        return Independent(
            Normal(self.means[index].float(), scales, validate_args=False), 1, validate_args=False
        )

    def distribution(self) -> Distribution:
        uniform = torch.zeros(self.num_classes, device=self.means.device)
        return MixtureSameFamily(
            Categorical(logits=uniform, validate_args=False),
            self._gaussians(slice(None)),
            validate_args=False,
        )

    def distribution_given(self, y: Tensor | None) -> Distribution:
        return self.distribution() if y is None else self._gaussians(y.long())
