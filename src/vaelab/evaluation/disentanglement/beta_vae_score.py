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

from vaelab.evaluation.disentanglement.factor_encoder import FactorEncoder, group_steps
from vaelab.evaluation.disentanglement.sampling import fix_one_factor
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


def draws(settings: DisentanglementSettings) -> int:
    """Factor vectors the score draws: two per pair, ``group_size`` pairs per example."""
    return 2 * settings.group_size * (settings.num_train + settings.num_eval)


def pair_differences(
    encoder: FactorEncoder, num_examples: int, settings: DisentanglementSettings
) -> PairDifferences:
    """``num_examples`` labelled examples, the factors of many groups encoded together."""
    data, generator = encoder.data, encoder.generator
    num_factors, size = len(data.factor_sizes), settings.group_size
    features, labels = [], []
    for groups in group_steps(num_examples, 2 * size):
        shared = torch.randint(num_factors, (groups,), generator=generator)
        first = data.sample_factors(groups * size, generator).view(groups, size, -1)
        second = data.sample_factors(groups * size, generator).view(groups, size, -1)
        second = fix_one_factor(second, shared, first)
        codes = encoder.codes(torch.cat([first, second]).flatten(0, 1))
        codes = codes.reshape(2, groups, size, -1)
        features.append(np.abs(codes[0] - codes[1]).mean(axis=1))
        labels.append(shared.numpy())
    return PairDifferences(np.concatenate(features), np.concatenate(labels))


def beta_vae_score(encoder: FactorEncoder, settings: DisentanglementSettings) -> BetaVAEScore:
    """Accuracy of the linear classifier of the fixed factor (train and held-out)."""
    train = pair_differences(encoder, settings.num_train, settings)
    evaluation = pair_differences(encoder, settings.num_eval, settings)
    classifier = LogisticRegression(random_state=settings.seed)
    with warnings.catch_warnings():  # the library default's 100 iterations, as in the literature
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train.features, train.labels)
    return BetaVAEScore(
        train_accuracy=float(classifier.score(train.features, train.labels)),
        eval_accuracy=float(classifier.score(evaluation.features, evaluation.labels)),
    )
