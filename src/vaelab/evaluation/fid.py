"""Fréchet distance between two sets of features (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium", the FID definition):

    FID = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}),

the squared 2-Wasserstein distance between Gaussians with the features' means and
covariances. The moments and the trace of the matrix square root come from torchmetrics'
``FrechetInceptionDistance`` (float64 sums; no torch-fidelity needed with a custom
``feature`` module). Features are computed once by vaelab's extractor and shared with
precision/recall, so torchmetrics is handed the features themselves.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from vaelab.errors import VaelabError


class _GivenFeatures(nn.Identity):
    """torchmetrics' ``feature`` network for inputs that already are features [N, K]."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


def frechet_distance(real: Tensor, generated: Tensor) -> float:
    """FID between feature sets [N, K] and [M, K] (N, M ≥ 2)."""
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise VaelabError(
            f"FID needs two feature matrices with the same number of columns, got "
            f"{tuple(real.shape)} and {tuple(generated.shape)}"
        )
    if len(real) < 2 or len(generated) < 2:
        raise VaelabError("FID needs at least two real and two generated samples")
    metric = FrechetInceptionDistance(feature=_GivenFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(generated.double(), real=False)
    return float(metric.compute())


def gaussian_frechet_distance(
    mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor
) -> float:
    """The same distance between two Gaussians given by their moments, with SciPy's matrix
    square root (the independent computation the tests compare against)."""
    from scipy.linalg import sqrtm

    root = sqrtm((cov_a @ cov_b).double().numpy())
    trace = float(torch.trace(cov_a + cov_b).double()) - 2 * float(root.real.trace())
    return float(((mean_a - mean_b).double() ** 2).sum()) + trace
