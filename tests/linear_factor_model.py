"""A small latent-variable family written only against
:class:`~vaelab.models.interface.LatentVariableModel` (a linear factor model on 4×4 binary
patterns) and a quiet trainer for it: shared by the tests of the model interface, the regimes
and the builders."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

from vaelab.models.interface import LatentVariableModel
from vaelab.priors.standard_normal import StandardNormalPrior

SHAPE = (1, 4, 4)


PIXELS = math.prod(SHAPE)


class LinearFactorModel(LatentVariableModel):
    """Logistic factor analysis: z ~ N(0, I), x | z ~ Bernoulli(σ(Wz + b)) per pixel, with a
    linear-Gaussian encoder. Only the interface: torch distributions, no vaelab parts except
    the prior."""

    def __init__(self, latent_dim: int = 2) -> None:
        super().__init__()
        self.latent_dim, self.input_shape = latent_dim, SHAPE
        self.encoder = nn.Linear(PIXELS, 2 * latent_dim)
        self.decoder = nn.Linear(latent_dim, PIXELS)
        self._modules["prior"] = StandardNormalPrior()
        self.prior.setup(latent_dim, SHAPE, self.encode)

    @property
    def prior(self) -> StandardNormalPrior:
        return self._modules["prior"]

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        mean, log_scale = self.encoder(x.flatten(-3)).chunk(2, dim=-1)
        return Independent(Normal(mean, log_scale.exp()), 1)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        logits = self.decoder(z).unflatten(-1, SHAPE)
        return Independent(Bernoulli(logits=logits), len(SHAPE))

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        return self.decode(self.prior.sample(num, y, generator)).mean


def binary_patterns(num: int = 256, seed: int = 0) -> Tensor:
    """Two stripe patterns with pixel noise: a latent-variable model's easy case."""
    generator = torch.Generator().manual_seed(seed)
    stripes = torch.zeros(2, *SHAPE)
    stripes[0, :, :, ::2] = 1
    stripes[1, :, ::2, :] = 1
    chosen = stripes[torch.randint(0, 2, (num,), generator=generator)]
    flips = torch.rand(num, *SHAPE, generator=generator) < 0.05
    return torch.where(flips, 1 - chosen, chosen)


def loader(x: Tensor, batch_size: int = 32, shuffle: bool = False) -> DataLoader:
    return DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size, shuffle)


def quiet_trainer(tmp_path, **kwargs) -> L.Trainer:
    settings = {
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
        **kwargs,
    }
    return L.Trainer(**settings)
