"""``sampler=pixelcnn``: a gated PixelCNN fitted ex post to the grids of code indices of a model
whose code is a grid (the VQ-VAE's stage-2 prior, van den Oord et al. 2017, §3.2 and §4.1,
here fitted by vaelab-eval on a trained stage 1 instead of by a second training run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.samplers.base import FitSummary, Sampler, TrainingCodes, codes_in_batches
from vaelab.schema import PositiveFloat, PositiveInt, checked_arguments

if TYPE_CHECKING:
    from vaelab.models.interface import LatentVariableModel


@checked_arguments("sampler")
class PixelCNNSampler(Sampler):
    """p(k) = Π_i p(k_i | k_<i) over the (h, w) grid of code indices, trained by maximum
    likelihood on the index grids of the training images. The grid, the number of codes and
    the maps between flat code maps and index grids are the model's code-grid prior's
    (``model.prior``: ``grid_shape``, ``num_codes``, ``attach``-ed maps); a model whose prior
    is not over code grids is refused in one line."""

    name = "pixelcnn"

    def __init__(
        self,
        channels: PositiveInt = 32,
        layers: PositiveInt = 5,
        kernel_size: PositiveInt = 3,
        epochs: PositiveInt = 10,
        batch_size: PositiveInt = 128,
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__()
        self.channels, self.layers, self.kernel_size = int(channels), int(layers), int(kernel_size)
        self.epochs, self.batch_size, self.lr = int(epochs), int(batch_size), float(lr)

    def settings(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "layers": self.layers,
            "kernel_size": self.kernel_size,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
        }

    def check_model(self, model: LatentVariableModel) -> None:
        grid = model.prior
        if not all(hasattr(grid, name) for name in ("grid_shape", "num_codes", "sample_indices")):
            raise VaelabError(
                f"sampler=pixelcnn models a grid of code indices, but {type(model).__name__}'s "
                "code is not one (model=vqvae has one); use sampler=gmm or sampler=maf"
            )
        # the model's maps, not a submodule: the sampler's state is its PixelCNN only
        self.__dict__["code_grid"] = grid

    def build(self, latent_dim: int) -> None:
        super().build(latent_dim)
        grid = self.__dict__["code_grid"]
        self.net = GatedPixelCNN(grid.num_codes, self.channels, self.layers, self.kernel_size)

    def indices_of(self, codes: Tensor) -> Tensor:
        return self.__dict__["code_grid"]._indices_of(codes)

    def fit(self, codes: TrainingCodes, generator: torch.Generator) -> FitSummary:
        from vaelab.priors.base import drawing_with

        with drawing_with(generator):
            self.build(codes.latent_dim)
        with torch.no_grad():
            device = self.__dict__["code_grid"].device_anchor.device
            indices = torch.cat(
                [self.indices_of(chunk.to(device)).cpu() for chunk in codes.mean.split(1024)]
            )
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        steps = 0
        for _ in range(self.epochs):
            for batch in codes_in_batches(indices, self.batch_size, generator):
                loss = -self.net.log_prob(batch).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
        with torch.no_grad():
            mean = float(torch.cat([self.net.log_prob(c) for c in indices.split(1024)]).mean())
        return FitSummary(train_log_likelihood=mean, steps=steps)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(k(z)) of flat code maps z: the mass of their index grid (nats)."""
        return self.net.log_prob(self.indices_of(z).cpu())

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        grid = self.__dict__["code_grid"]
        indices = self.net.sample(int(num), tuple(grid.grid_shape), generator)
        return grid._codes_of(indices.to(grid.device_anchor.device))
