"""``sampler=prior`` (the default): the model's own samples, z ~ p(z), as before samplers."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from vaelab.samplers.base import Sampler
from vaelab.schema import checked_arguments

if TYPE_CHECKING:
    from vaelab.models.interface import LatentVariableModel


@checked_arguments("sampler")
class PriorSampler(Sampler):
    """Draws through ``model.sample`` (z ~ p(z), or the model's own generative path: a VQ-VAE's
    PixelCNN prior, a hierarchy's top-down pass); nothing is fitted."""

    name = "prior"
    needs_fit: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()

    def check_model(self, model: LatentVariableModel) -> None:
        """Every model that samples at all samples this way."""

    @torch.no_grad()
    def pictures(
        self, model: LatentVariableModel, num: int, generator: torch.Generator | None = None
    ) -> Tensor:
        return model.sample(num, model.labels_for_samples(num, generator), generator)
