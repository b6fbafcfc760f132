"""A made-up sweep's disentanglement scores (families × β × seeds, with known rank correlations
between the metrics): shared by the tests of vaelab-report's section and of its figures."""

from __future__ import annotations

import numpy as np

from vaelab.evaluation.disentanglement import METRIC_NAMES

BETAS = (1, 4, 16)
SEEDS = (0, 1)
FAMILIES = ("mlp", "conv")


def sweep_metrics(beta: float, seed: int, family: str) -> dict[str, float]:
    """MIG rises with β, SAP is a monotone function of MIG, explicitness falls with β, the rest
    also rise; seeds and families shift them a little."""
    base = np.log(beta) / np.log(16) * 0.8 + 0.01 * seed + (0.05 if family == "conv" else 0.0)
    values = {name: float(base) for name in METRIC_NAMES}
    values["sap"] = float(base**2)
    values["explicitness"] = float(1 - base)
    return values
