"""Active units (Burda et al. 2015, §5.2): dimension u is active if Cov_x(E_q[z_u | x]) > δ."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

#: Burda et al.'s threshold δ on the variance of a posterior mean across the data
ACTIVITY_THRESHOLD = 1e-2


@dataclass
class ActiveUnits:
    """``count`` active dimensions; ``activity`` [D] = Var_x(E_q[z_u|x]); ``mask`` [D] bool."""

    count: int
    activity: Tensor
    mask: Tensor
    threshold: float


def active_units(posterior_means: Tensor, threshold: float = ACTIVITY_THRESHOLD) -> ActiveUnits:
    """Count the dimensions whose posterior mean varies across data points ``[N, D]``.

    A dimension the encoder ignores has E_q[z_u|x] ≈ 0 (the prior's mean) for every x, so its
    variance across x is ≈ 0; an inactive unit carries no information about x.
    """
    if posterior_means.ndim != 2:
        raise ValueError(
            f"posterior_means must be [N, D], got shape {tuple(posterior_means.shape)}"
        )
    if posterior_means.shape[0] < 2:
        raise ValueError(
            "active units need the posterior means of at least 2 data points, got "
            f"{posterior_means.shape[0]}; evaluate more test batches"
        )
    activity = posterior_means.double().var(dim=0, correction=1)
    mask = activity > threshold
    return ActiveUnits(
        count=int(mask.sum()), activity=activity, mask=mask, threshold=float(threshold)
    )
