"""UDR, the Unsupervised Disentanglement Ranking of Duan et al. 2020 ("Unsupervised model
selection for variational disentangled representation learning", ICLR 2020,
arXiv:1905.12614, its method section): a model is scored by how alike its representation is
to those of models trained with the same settings from other seeds, with no ground-truth
factors.

For a pair of models (i, j), R(a, b) ≥ 0 says how strongly latent a of model i goes with
latent b of model j: the absolute Spearman correlation of their codes (UDR_S) or the absolute
weight of a Lasso regression of model j's codes on model i's (UDR_L, standardised codes,
α = 0.1 as in disentanglement_lib). Only *informative* latents take part: those whose mean
KL(q(z_a|x) ‖ p(z_a)) over the sample exceeds 0.01 nats (the paper's I_KL(a)). The pair's
score is the paper's UDR_ij,

    UDR_ij = 1 / (d_a + d_b) · [ Σ_b r_b² / Σ_a R(a, b)  +  Σ_a r_a² / Σ_b R(a, b) ],

with r_b = max_a R(a, b), r_a = max_b R(a, b) and d_a, d_b the informative latents' counts,
sums over informative latents only: 1 when the latents match one to one (up to permutation
and sign), lower when each latent of one model spreads over several of the other. A model's
UDR is UDR_i = median_j UDR_ij over the other models j of its group (the method's last step).

disentanglement_lib (``evaluation/udr/metrics/udr.py``) averages the two sums' means
instead of dividing both by d_a + d_b; the two agree whenever d_a = d_b. A latent whose R
column or row is all zero contributes 0, as there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.stats import ConstantInputWarning, spearmanr
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.posteriors.structure import factorised_marginals
from vaelab.stage_progress import Mode, stage

Similarity = Literal["lasso", "spearman"]
#: the two variants, by the names their scores are reported under
SIMILARITIES: dict[str, Similarity] = {"udr_lasso": "lasso", "udr_spearman": "spearman"}
#: a latent is informative when its mean KL to the prior exceeds this (nats; Duan et al.)
KL_THRESHOLD = 0.01
#: the Lasso's L1 weight on standardised codes (disentanglement_lib's)
LASSO_ALPHA = 0.1


@dataclass
class ModelCodes:
    """One model's representation of the shared sample: ``codes`` [N, D] (the encoder means)
    and ``kl_per_dimension`` [D], the mean over the sample of KL(q(z_d|x) ‖ p(z_d)) in nats."""

    codes: Tensor
    kl_per_dimension: Tensor

    def informative(self, threshold: float = KL_THRESHOLD) -> Tensor:
        """The paper's I_KL: [D] bool, the latents whose mean KL exceeds ``threshold``."""
        return self.kl_per_dimension > threshold


@dataclass
class UDRScores:
    """``model_scores`` [M]: each model's UDR (NaN for a model alone in its group);
    ``pairwise`` [M, M]: UDR_ij (NaN off the groups and on the diagonal);
    ``informative`` [M]: each model's count of informative latents."""

    model_scores: np.ndarray
    pairwise: np.ndarray
    informative: list[int]
    similarity: Similarity


@torch.no_grad()
def encode_for_udr(model: LatentVariableModel, x: Tensor, y: Tensor | None = None) -> ModelCodes:
    """The encoder means of ``x`` and the per-latent KL to the prior, through the model
    interface (``latent_codes`` and ``prior.kl_per_dimension`` of q's factors)."""
    posterior = model.encode(x, y)
    marginals = factorised_marginals(posterior)
    if marginals is None:
        raise VaelabError(
            f"UDR's filter of uninformative latents needs a q(z|x) that factorises over the "
            f"latents, and {type(posterior).__name__} does not; rank models with a diagonal "
            "posterior (posterior=diagonal)"
        )
    try:
        kl = model.prior.kl_per_dimension(marginals, y)
    except (AttributeError, NotImplementedError) as err:
        raise VaelabError(
            f"UDR's filter of uninformative latents needs the KL to the prior latent by "
            f"latent, which {type(model.prior).__name__} has no closed form for; rank models "
            "with a prior that factorises over the latents (prior=standard_normal)"
        ) from err
    codes = model.latent_codes(x, y).mean
    return ModelCodes(codes=codes.float().cpu(), kl_per_dimension=kl.double().mean(0).cpu())


def spearman_similarity(codes_i: np.ndarray, codes_j: np.ndarray) -> np.ndarray:
    """R [D_i, D_j]: |Spearman correlation| between each latent of i and each latent of j
    (0 where a latent is constant over the sample)."""
    with warnings.catch_warnings():  # a constant latent: its correlations are NaN, then 0
        warnings.simplefilter("ignore", ConstantInputWarning)
        correlation = spearmanr(np.hstack([codes_i, codes_j])).statistic
    if np.ndim(correlation) == 0:  # two latents in all: scipy returns their one correlation
        correlation = np.array([[1.0, correlation], [correlation, 1.0]])
    block = correlation[: codes_i.shape[1], codes_i.shape[1] :]
    return np.nan_to_num(np.abs(block), nan=0.0)


def lasso_similarity(
    codes_i: np.ndarray, codes_j: np.ndarray, alpha: float = LASSO_ALPHA
) -> np.ndarray:
    """R [D_i, D_j]: |weight| of latent a of model i in the Lasso regression of latent b of
    model j on all of model i's latents, both standardised (zero mean, unit variance)."""
    inputs = StandardScaler().fit_transform(codes_i)
    targets = StandardScaler().fit_transform(codes_j)
    regression = Lasso(alpha=alpha).fit(inputs, targets)
    return np.abs(np.atleast_2d(regression.coef_)).T


def pairwise_score(similarity: np.ndarray) -> float:
    """UDR_ij of Duan et al. 2020 (the formula above) from R over the two models' informative
    latents [d_a, d_b]; 0 when either model has none."""
    d_a, d_b = similarity.shape
    if d_a == 0 or d_b == 0:
        return 0.0

    def strength(matrix: np.ndarray) -> float:  # Σ_b r_b² / Σ_a R(a, b), R's columns
        totals = matrix.sum(axis=0)
        largest = matrix.max(axis=0)
        used = totals > 0
        return float((largest[used] ** 2 / totals[used]).sum())

    return (strength(similarity) + strength(similarity.T)) / (d_a + d_b)


def _similarity(kind: Similarity, codes_i: np.ndarray, codes_j: np.ndarray) -> np.ndarray:
    if codes_i.shape[1] == 0 or codes_j.shape[1] == 0:  # a model with no informative latent
        return np.zeros((codes_i.shape[1], codes_j.shape[1]))
    if kind == "lasso":
        return lasso_similarity(codes_i, codes_j)
    if kind == "spearman":
        return spearman_similarity(codes_i, codes_j)
    raise VaelabError(f"unknown UDR similarity {kind!r}; use one of lasso, spearman")


def udr_scores(
    models: Sequence[ModelCodes],
    similarity: Similarity = "lasso",
    groups: Sequence[Sequence[int]] | None = None,
    *,
    kl_threshold: float = KL_THRESHOLD,
    progress: Mode | None = "silent",
) -> UDRScores:
    """UDR of each model: the median of UDR_ij over the other models j of its group (all
    models form one group when ``groups`` is None). Every model must encode the same
    observations in the same number of latents. ``kl_threshold``: I_KL's threshold (−inf
    keeps every latent). Following disentanglement_lib, UDR_ij reads R from model i's codes to
    model j's, and model i's score is the median of UDR_ji."""
    if not models:
        raise VaelabError("UDR needs the codes of at least 2 models; got none")
    sizes = {tuple(m.codes.shape) for m in models}
    if len(sizes) > 1:
        raise VaelabError(
            "UDR compares models on one shared sample in one latent size, but the codes have "
            f"shapes {sorted(sizes)}; rank models of one latent size on one data set"
        )
    groups = [list(range(len(models)))] if groups is None else [list(g) for g in groups]
    masks = [m.informative(kl_threshold).numpy() for m in models]
    codes = [m.codes.double().numpy() for m in models]
    pairwise = np.full((len(models), len(models)), np.nan)
    pairs = [(i, j) for group in groups for i in group for j in group if i != j]
    with stage(f"UDR ({similarity})", len(pairs), "model pairs", mode=progress) as bar:
        for i, j in bar.track(pairs):
            matrix = _similarity(similarity, codes[i][:, masks[i]], codes[j][:, masks[j]])
            pairwise[i, j] = pairwise_score(matrix)
    scores = np.full(len(models), np.nan)
    for group in groups:
        for i in group:
            others = [pairwise[j, i] for j in group if j != i]
            if others:
                scores[i] = float(np.median(others))
    return UDRScores(
        model_scores=scores,
        pairwise=pairwise,
        informative=[int(mask.sum()) for mask in masks],
        similarity=similarity,
    )
