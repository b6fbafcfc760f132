"""Interface of the KL term's weighting in the training loss."""

from __future__ import annotations

from torch import Tensor


class KLWeighting:
    """Maps (KL, global step) to the regulariser added to the reconstruction loss.

    The default is the β-VAE penalty β(step)·KL (Higgins et al. 2017). Subclasses change
    :meth:`beta` (warm-up, cyclical) or :meth:`penalty` (capacity, free bits).
    """

    def beta(self, step: int) -> float:
        """The weight logged as ``beta`` at this step."""
        raise NotImplementedError

    def penalty(self, kl: Tensor, kl_per_dim: Tensor | None, step: int) -> Tensor:
        """Per-data-point regulariser, shape [B]; ``kl_per_dim`` is [B, D] when known."""
        return self.beta(step) * kl
