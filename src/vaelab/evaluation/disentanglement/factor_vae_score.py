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

from vaelab.evaluation.disentanglement.factor_encoder import FactorEncoder, group_steps
from vaelab.evaluation.disentanglement.sampling import FactorCodes, fix_one_factor
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings


@dataclass
class FactorVAEScore:
    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int


def draws(settings: DisentanglementSettings, variance_sample_given: bool = False) -> int:
    """Factor vectors the score draws: ``group_size`` per vote, and the variance sample
    unless it is given."""
    votes = settings.group_size * (settings.num_train + settings.num_eval)
    return votes + (0 if variance_sample_given else settings.num_variance_estimate)


def variance_votes(
    encoder: FactorEncoder,
    num_votes: int,
    global_variance: np.ndarray,
    active: np.ndarray,
    settings: DisentanglementSettings,
) -> np.ndarray:
    """Vote counts [F, D]: entry (k, d) counts the groups with factor k fixed whose smallest
    normalised variance was code d's."""
    data, generator = encoder.data, encoder.generator
    num_factors, size = len(data.factor_sizes), settings.group_size
    votes = np.zeros((num_factors, len(global_variance)), dtype=np.int64)
    active_codes = np.flatnonzero(active)
    for groups in group_steps(num_votes, size):
        fixed = torch.randint(num_factors, (groups,), generator=generator)
        factors = data.sample_factors(groups * size, generator).view(groups, size, -1)
        factors = fix_one_factor(factors, fixed, factors[:, :1].expand_as(factors))
        codes = encoder.codes(factors.flatten(0, 1)).reshape(groups, size, -1)
        local = codes[:, :, active].var(axis=1, ddof=1) / global_variance[active]
        np.add.at(votes, (fixed.numpy(), active_codes[local.argmin(axis=1)]), 1)
    return votes


def factor_vae_score(
    encoder: FactorEncoder,
    settings: DisentanglementSettings,
    variance_sample: FactorCodes | None = None,
) -> FactorVAEScore:
    """Majority-vote accuracy of predicting the fixed factor from the least-varying code.
    ``variance_sample``: i.i.d. (factors, codes) whose first ``num_variance_estimate`` rows
    estimate the codes' variances (drawn here when None)."""
    if variance_sample is None:
        variance_sample = encoder.sample(settings.num_variance_estimate)
    codes = variance_sample.codes[: settings.num_variance_estimate]
    if len(codes) < settings.num_variance_estimate:
        raise ValueError(
            f"the variance sample has {len(codes)} points, fewer than num_variance_estimate"
        )
    global_variance = codes.var(axis=0, ddof=1)
    active = np.sqrt(global_variance) >= settings.active_std_threshold
    if not active.any():
        return FactorVAEScore(train_accuracy=0.0, eval_accuracy=0.0, num_active_dims=0)
    train = variance_votes(encoder, settings.num_train, global_variance, active, settings)
    prediction = train.argmax(axis=0)  # the factor each code votes for most often
    codes_index = np.arange(train.shape[1])
    evaluation = variance_votes(encoder, settings.num_eval, global_variance, active, settings)
    return FactorVAEScore(
        train_accuracy=float(train[prediction, codes_index].sum() / train.sum()),
        eval_accuracy=float(evaluation[prediction, codes_index].sum() / evaluation.sum()),
        num_active_dims=int(active.sum()),
    )
