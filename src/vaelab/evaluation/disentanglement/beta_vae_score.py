"""β-VAE score (Higgins et al. 2017, "β-VAE: learning basic visual concepts with a
constrained variational framework", the disentanglement metric of Sec. 3 and its appendix).

One training example: pick a factor k uniformly; draw ``group_size`` pairs of factor vectors
that agree on factor k and are independent elsewhere; the example is
z_diff = mean over the pairs of |r(x₁) − r(x₂)| (a vector of the code size), its label k.
A linear classifier (scikit-learn's default ``LogisticRegression``, as in
disentanglement_lib's ``beta_vae_sklearn``) predicts k; the score is its accuracy on
``num_eval`` fresh examples. Defaults (64 pairs, 10 000 training / 5 000 evaluation examples)
are disentanglement_lib's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from vaelab.data.ground_truth import GroundTruthData
from vaelab.evaluation.disentanglement.sampling import (
    Representation,
    encode_factors,
    fix_one_factor,
)
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings


@dataclass
class BetaVAEScore:
    train_accuracy: float
    eval_accuracy: float


@dataclass
class PairDifferences:
    """``features`` [N, D]: mean |code difference| of each example's pairs; ``labels`` [N]:
    the factor they share."""

    features: np.ndarray
    labels: np.ndarray


def pair_differences(
    data: GroundTruthData,
    representation: Representation,
    num_examples: int,
    settings: DisentanglementSettings,
    generator: torch.Generator,
) -> PairDifferences:
    """``num_examples`` labelled examples, drawn many groups at a time."""
    num_factors, size = len(data.factor_sizes), settings.group_size
    groups_per_step = max(1, settings.encode_batch_size // (2 * size))
    features, labels = [], []
    for start in range(0, num_examples, groups_per_step):
        groups = min(groups_per_step, num_examples - start)
        shared = torch.randint(num_factors, (groups,), generator=generator)
        first = data.sample_factors(groups * size, generator).view(groups, size, -1)
        second = data.sample_factors(groups * size, generator).view(groups, size, -1)
        second = fix_one_factor(second, shared, first)
        codes = [
            encode_factors(
                data, representation, f.flatten(0, 1), generator, settings.encode_batch_size
            ).reshape(groups, size, -1)
            for f in (first, second)
        ]
        features.append(np.abs(codes[0] - codes[1]).mean(axis=1))
        labels.append(shared.numpy())
    return PairDifferences(np.concatenate(features), np.concatenate(labels))


def beta_vae_score(
    data: GroundTruthData,
    representation: Representation,
    settings: DisentanglementSettings,
    generator: torch.Generator,
) -> BetaVAEScore:
    """Accuracy of the linear classifier of the fixed factor (train and held-out)."""
    train = pair_differences(data, representation, settings.num_train, settings, generator)
    evaluation = pair_differences(data, representation, settings.num_eval, settings, generator)
    classifier = LogisticRegression(random_state=settings.seed)
    with warnings.catch_warnings():  # the library default's 100 iterations, as in the literature
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train.features, train.labels)
    return BetaVAEScore(
        train_accuracy=float(classifier.score(train.features, train.labels)),
        eval_accuracy=float(classifier.score(evaluation.features, evaluation.labels)),
    )
