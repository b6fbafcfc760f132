"""The interface of an ex-post sampler (``sampler=``): a density over a trained model's codes,
fitted once after training and drawn from in place of p(z).

Ghosh et al. 2020 ("From Variational to Deterministic Autoencoders", §4, "ex-post density
estimation") fit a density to the codes of the training images and decode its samples; Dai &
Wipf 2019 fit a second VAE. Every sampler here sees the codes only (``TrainingCodes``, from
the model interface's ``latent_codes``) and yields codes that the model's ``decode`` turns into
pictures: :meth:`Sampler.pictures` is the one place vaelab-eval's samples, sample grids and
FID/precision/recall get their latents from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    from vaelab.models.interface import LatentVariableModel


@dataclass
class TrainingCodes:
    """The codes of the training images: ``mean`` [N, D] (``latent_codes(x).mean``) and, where
    the encoder has a spread, ``stddev`` [N, D] of q(z|x) (else None)."""

    mean: Tensor
    stddev: Tensor | None = None

    @property
    def latent_dim(self) -> int:
        return int(self.mean.shape[1])

    def standardisation(self) -> tuple[Tensor, Tensor]:
        """Per-dimension mean and standard deviation of the codes (a floor keeps a dead
        dimension finite)."""
        scale = self.mean.std(0).clamp_min(1e-6)
        return self.mean.mean(0), scale


@dataclass
class FitSummary:
    """What fitting said: the sampler's mean log-density of the training codes (nats per code,
    where the sampler has a density) and the optimisation steps taken (0 for a closed-form fit)."""

    train_log_likelihood: float | None
    steps: int


class Sampler(nn.Module):
    """A density q_ex(z) over codes. :meth:`fit` once on the training codes; :meth:`sample`
    draws codes [num, D]; :meth:`pictures` decodes them with the model. Its ``state_dict``
    holds tensors only and :meth:`build` recreates the modules it needs from the code size, so
    a saved sampler loads with ``torch.load(weights_only=True)``."""

    #: the ``sampler=`` option
    name: ClassVar[str]
    #: False for the prior sampler: nothing to fit, save or load
    needs_fit: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim: int | None = None

    def build(self, latent_dim: int) -> None:
        """Create the modules and buffers for codes of size ``latent_dim``."""
        self.latent_dim = int(latent_dim)

    def fit(self, codes: TrainingCodes, generator: torch.Generator) -> FitSummary:
        """Fit the density to the training codes (once, after training)."""
        raise NotImplementedError

    def restore(self, latent_dim: int, state: dict[str, Tensor]) -> None:
        """Load a fitted state (a ``state_dict`` read with ``weights_only=True``)."""
        self.build(latent_dim)
        self.load_state_dict(state)
        self.eval()

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``num`` codes [num, D] drawn from the fitted density."""
        raise NotImplementedError

    def log_prob(self, z: Tensor) -> Tensor:
        """log q_ex(z) [N] of codes [N, D]."""
        raise NotImplementedError

    def check_model(self, model: LatentVariableModel) -> None:
        """Refuse, in one line, a model whose code this sampler cannot draw."""
        structure = model.latent_structure
        if not structure.is_flat:
            raise VaelabError(
                f"sampler={self.name} draws one flat code vector, but {type(model).__name__}'s "
                f"latent has layers {tuple(structure.layers)}; use sampler=prior"
            )

    @torch.no_grad()
    def pictures(
        self, model: LatentVariableModel, num: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num`` pictures E[x|z] [num, C, H, W] of codes drawn from this sampler, with the
        labels the model draws for unconditional samples."""
        labels = model.labels_for_samples(num, generator)
        codes = self.sample(num, generator).to(model.device)
        return model.decode(codes, labels).mean

    def settings(self) -> dict[str, Any]:
        """The constructor's settings, stored with the fitted state (a saved sampler fitted
        with other settings is refitted)."""
        return {}


def codes_in_batches(codes: Tensor, batch_size: int, generator: torch.Generator):
    """Shuffled mini-batches of ``codes`` [N, D] for one epoch."""
    order = torch.randperm(len(codes), generator=generator)
    for start in range(0, len(codes), batch_size):
        yield codes[order[start : start + batch_size]]
