"""Interface of the ``beta=`` group: the weight of an objective's regulariser over training."""

from __future__ import annotations

from torch import Tensor


class Weighting:
    """A schedule β(step) of the weight an objective puts on its regulariser.

    Objectives decide what the regulariser is and call :meth:`penalty` with it (the ELBO's
    KL; a family with several terms weights the one its paper puts β on). The default
    penalty is β(step)·R (the β-VAE, Higgins et al. 2017). Subclasses change :meth:`beta`
    (warm-up, cyclical) or :meth:`penalty` (capacity and free bits, which reshape a KL).
    """

    def beta(self, step: int) -> float:
        """The weight logged as ``beta`` at this step."""
        raise NotImplementedError

    # the interface: the default β·KL needs no per-dimension parts; free bits does
    def penalty(self, kl: Tensor, kl_per_dim: Tensor | None, step: int) -> Tensor:  # noqa: ARG002
        """The weighted regulariser per data point, shape [B], for a regulariser ``kl`` [B]
        (and its per-dimension parts [B, D] when known)."""
        return self.beta(step) * kl

    @property
    def is_identity(self) -> bool:
        """True when the penalty is the regulariser itself at every step (β ≡ 1)."""
        return False
