"""FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising": the metric they
propose, their Fig. 2).

Each code is divided by its standard deviation over the data (estimated on
``num_variance_estimate`` points; codes with a standard deviation below
``active_std_threshold`` count as collapsed and are left out). One vote: pick a factor k;
draw ``group_size`` factor vectors that share factor k's value; the code with the smallest
normalised variance over the group votes for k. The classifier is the majority vote: each
code predicts the factor it was most often the argmin for on ``num_train`` votes; the score is
its accuracy on ``num_eval`` fresh votes. Defaults are disentanglement_lib's (64 points per
vote, 10 000 / 5 000 votes, 10 000 points for the variances, threshold 0.05).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vaelab.data.ground_truth import GroundTruthData
from vaelab.evaluation.disentanglement.sampling import (
    Representation,
    encode_factors,
    fix_one_factor,
    sample_factor_codes,
)
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings


@dataclass
class FactorVAEScore:
    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int


def variance_votes(
    data: GroundTruthData,
    representation: Representation,
    num_votes: int,
    global_variance: np.ndarray,
    active: np.ndarray,
    settings: DisentanglementSettings,
    generator: torch.Generator,
) -> np.ndarray:
    """Vote counts [F, D]: entry (k, d) counts the groups with factor k fixed whose smallest
    normalised variance was code d's."""
    num_factors, size = len(data.factor_sizes), settings.group_size
    votes = np.zeros((num_factors, len(global_variance)), dtype=np.int64)
    active_codes = np.flatnonzero(active)
    groups_per_step = max(1, settings.encode_batch_size // size)
    for start in range(0, num_votes, groups_per_step):
        groups = min(groups_per_step, num_votes - start)
        fixed = torch.randint(num_factors, (groups,), generator=generator)
        factors = data.sample_factors(groups * size, generator).view(groups, size, -1)
        factors = fix_one_factor(factors, fixed, factors[:, :1].expand_as(factors))
        codes = encode_factors(
            data, representation, factors.flatten(0, 1), generator, settings.encode_batch_size
        ).reshape(groups, size, -1)
        local = codes[:, :, active].var(axis=1, ddof=1) / global_variance[active]
        np.add.at(votes, (fixed.numpy(), active_codes[local.argmin(axis=1)]), 1)
    return votes


def factor_vae_score(
    data: GroundTruthData,
    representation: Representation,
    settings: DisentanglementSettings,
    generator: torch.Generator,
) -> FactorVAEScore:
    """Majority-vote accuracy of predicting the fixed factor from the least-varying code."""
    sample = sample_factor_codes(
        data, representation, settings.num_variance_estimate, generator, settings.encode_batch_size
    )
    global_variance = sample.codes.var(axis=0, ddof=1)
    active = np.sqrt(global_variance) >= settings.active_std_threshold
    if not active.any():
        return FactorVAEScore(train_accuracy=0.0, eval_accuracy=0.0, num_active_dims=0)
    train = variance_votes(
        data, representation, settings.num_train, global_variance, active, settings, generator
    )
    prediction = train.argmax(axis=0)  # the factor each code votes for most often
    codes = np.arange(train.shape[1])
    evaluation = variance_votes(
        data, representation, settings.num_eval, global_variance, active, settings, generator
    )
    return FactorVAEScore(
        train_accuracy=float(train[prediction, codes].sum() / train.sum()),
        eval_accuracy=float(evaluation[prediction, codes].sum() / evaluation.sum()),
        num_active_dims=int(active.sum()),
    )
