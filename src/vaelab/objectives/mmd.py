"""Maximum mean discrepancy between the aggregate posterior and the prior (Gretton et al. 2012,
"A Kernel Two-Sample Test", JMLR, Lemma 6: the unbiased U-statistic MMD²_u), with the kernels
InfoVAE and WAE use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.schema import PositiveFloat, checked_arguments

Kernel = Callable[[Tensor, Tensor], Tensor]
KernelName = Literal["imq", "rbf"]


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """‖a_i − b_j‖² for a [..., n, D] and b [..., m, D]: [..., n, m]."""
    return (a.unsqueeze(-2) - b.unsqueeze(-3)).square().sum(-1)


def rbf_kernel(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """exp(−‖a − b‖² / C), the Gaussian kernel with C = 2σ² (InfoVAE, Zhao et al. 2017, §4)."""
    return (-squared_distances(a, b) / scale).exp()


def inverse_multiquadric_kernel(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """C / (C + ‖a − b‖²) (WAE, Tolstikhin et al. 2018, §4, with C = 2·D·σ_z²): heavier
    tails than the RBF kernel, so distant codes still get a gradient."""
    return scale / (scale + squared_distances(a, b))


KERNELS = {"imq": inverse_multiquadric_kernel, "rbf": rbf_kernel}


def mmd_u_statistic(samples: Tensor, reference: Tensor, kernel: Kernel) -> Tensor:
    """The unbiased estimate of MMD²(P, Q) from n ≥ 2 samples of P and m ≥ 2 of Q
    (Gretton et al. 2012, eq. 3): the within-sample kernel means leave out the diagonal,
    so its expectation is MMD² exactly (0 for P = Q) and single estimates may be negative.
    ``samples`` [..., n, D] and ``reference`` [..., m, D] give one estimate per leading index."""
    n, m = samples.shape[-2], reference.shape[-2]

    def off_diagonal_sum(gram: Tensor) -> Tensor:
        return gram.sum((-2, -1)) - gram.diagonal(dim1=-2, dim2=-1).sum(-1)

    return (
        off_diagonal_sum(kernel(samples, samples)) / (n * (n - 1))
        + off_diagonal_sum(kernel(reference, reference)) / (m * (m - 1))
        - 2 * kernel(samples, reference).mean((-2, -1))
    )


def default_kernel_scale(latent_dim: int, prior_variance: float = 1.0) -> float:
    """C = 2·D·σ², the scale Tolstikhin et al. (2018, §4) use for the IMQ kernel."""
    return 2.0 * latent_dim * prior_variance


@checked_arguments("objective")
class CodeMMD:
    """The MMD²_u between a batch's codes z ~ q(z) and as many prior draws, with the kernel
    ``kernel`` (imq | rbf) at scale ``kernel_scale`` (None: 2·D, Tolstikhin et al. §4)."""

    def __init__(self, kernel: KernelName, kernel_scale: PositiveFloat | None) -> None:
        self.kernel_name = kernel
        self.kernel_scale = kernel_scale

    def __call__(self, model: LatentVariableModel, z: Tensor) -> Tensor:
        if z.shape[0] < 2:
            raise VaelabError("the MMD U-statistic needs batches of at least 2 data points")
        scale = self.kernel_scale or default_kernel_scale(z.shape[-1])
        kernel = KERNELS[self.kernel_name]
        prior_codes = model.prior.sample(z.shape[0]).to(z.dtype)
        return mmd_u_statistic(z, prior_codes, lambda a, b: kernel(a, b, scale))
