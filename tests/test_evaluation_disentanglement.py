"""vaelab.evaluation.disentanglement: the metrics against hand-computed values and synthetic
representations whose disentanglement is known (tests/ground_truth_toy.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import mutual_info_score

from tests.ground_truth_toy import (
    FactorPixels,
    factors_and_noise,
    noise_only,
    synthetic_table,
)
from vaelab.data.ground_truth import GroundTruthData
from vaelab.errors import VaelabError
from vaelab.evaluation.disentanglement import (
    ENCODED_KEY,
    METRIC_NAMES,
    DisentanglementSettings,
    compute_disentanglement,
)
from vaelab.evaluation.disentanglement.beta_vae_score import beta_vae_score
from vaelab.evaluation.disentanglement.dci import dci_scores, weighted_dci
from vaelab.evaluation.disentanglement.factor_encoder import FactorEncoder
from vaelab.evaluation.disentanglement.factor_vae_score import factor_vae_score
from vaelab.evaluation.disentanglement.information import (
    discrete_entropy,
    discrete_mutual_information,
    histogram_discretize,
)
from vaelab.evaluation.disentanglement.mig import mutual_information_gap
from vaelab.evaluation.disentanglement.modularity_explicitness import (
    modularity,
    modularity_explicitness,
)
from vaelab.evaluation.disentanglement.sampling import FactorCodes, sample_factor_codes
from vaelab.evaluation.disentanglement.sap import sap_score

SMALL = DisentanglementSettings(
    num_train=200, num_eval=200, group_size=16, num_variance_estimate=400, encode_batch_size=512
)


def _sample(data, representation, num, seed=0) -> FactorCodes:
    generator = torch.Generator().manual_seed(seed)
    return sample_factor_codes(data, representation, num, generator, 512)


def test_toy_data_is_ground_truth_data():
    assert isinstance(FactorPixels([2, 3]), GroundTruthData)


# -- information ----------------------------------------------------------------------------
def test_histogram_discretize_puts_the_maximum_in_the_last_bin():
    codes = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]])
    discrete = histogram_discretize(codes, num_bins=2)
    assert discrete[:, 0].tolist() == [1, 2, 2]
    assert len(set(discrete[:, 1])) == 1  # a constant code: one bin


def test_mutual_information_and_entropy_match_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, size=(300, 3))
    second = np.stack([first[:, 0] // 2, rng.integers(0, 5, 300)], 1)
    expected = [[mutual_info_score(a, b) for b in second.T] for a in first.T]
    np.testing.assert_allclose(discrete_mutual_information(first, second), expected, atol=1e-12)
    counts = [np.unique(c, return_counts=True)[1] for c in second.T]
    np.testing.assert_allclose(discrete_entropy(second), [scipy_entropy(c) for c in counts])


# -- MIG ----------------------------------------------------------------------------------------
def test_mig_of_a_hand_built_discrete_case():
    """v0 ∈ {0,1}, v1 ∈ {0..3}, each combination once. z0 = v0; z1 = v0 + 2·(v1 // 2) holds
    v0 (I = ln 2) and half of v1 (I = ln 2). Gap for v0: ln2 − ln2 = 0; for v1:
    (ln 2 − 0) / ln 4 = 1/2. MIG = 1/4."""
    v0, v1 = np.meshgrid(np.arange(2), np.arange(4), indexing="ij")
    factors = np.stack([v0.ravel(), v1.ravel()], 1)
    codes = np.stack([factors[:, 0], factors[:, 0] + 2 * (factors[:, 1] // 2)], 1).astype(float)
    assert mutual_information_gap(FactorCodes(codes, factors)) == pytest.approx(0.25)


def test_mig_when_the_factor_has_more_values_than_bins():
    """v ∈ {0..29}, once each, z = v in 20 equal bins of width 29/20: ten bins hold two values
    and ten hold one, so I(z; v) = H(bin) = (2/3) ln 15 + (1/3) ln 30, below H(v) = ln 30; the
    constant second code has I = 0."""
    values = np.arange(30)
    codes = np.stack([values.astype(float), np.zeros(30)], 1)
    expected = ((2 / 3) * math.log(15) + (1 / 3) * math.log(30)) / math.log(30)
    mig = mutual_information_gap(FactorCodes(codes, values[:, None]), num_bins=20)
    assert mig == pytest.approx(expected)
    assert mig < 1


# -- DCI ---------------------------------------------------------------------------------------
def test_dci_of_hand_importance_matrices():
    one_each = np.eye(3)
    assert weighted_dci(one_each) == pytest.approx((1.0, 1.0), abs=1e-8)
    disentanglement, completeness = weighted_dci(np.ones((3, 3)))
    assert disentanglement == pytest.approx(0.0, abs=1e-8)
    assert completeness == pytest.approx(0.0, abs=1e-8)
    # factor 0 in codes 0 and 1 equally, factor 1 in code 2: every code is about one factor
    # (D = 1); factor 0's column has entropy ln 2 / ln 3 and 2/3 of the importance
    copied = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    disentanglement, completeness = weighted_dci(copied)
    assert disentanglement == pytest.approx(1.0, abs=1e-8)
    expected = (2 / 3) * (1 - math.log(2) / math.log(3)) + 1 / 3
    assert completeness == pytest.approx(expected, abs=1e-8)


def test_dci_with_trees_on_two_binary_factors():
    data = FactorPixels([2, 2], noise_pixels=1)
    representation = factors_and_noise(data)
    scores = dci_scores(_sample(data, representation, 80), _sample(data, representation, 80, 1))
    assert scores.disentanglement > 0.95
    assert scores.completeness > 0.95
    assert scores.informativeness_test == 1.0
    assert scores.importance[:2].argmax(0).tolist() == [0, 1]


# -- modularity and explicitness ----------------------------------------------------------------
def test_modularity_of_hand_mutual_information():
    assert modularity(np.array([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(1.0)
    # code 0 tells as much about both factors (δ = 1): 0; a code with no information: 0
    assert modularity(np.array([[1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])) == pytest.approx(1 / 3)
    # three factors, θ = 2, the others 1 and 0: δ = 1 / (4 · 2)
    assert modularity(np.array([[2.0, 1.0, 0.0]])) == pytest.approx(1 - 1 / 8)


def test_explicitness_of_the_factors_and_of_noise():
    data = FactorPixels([2, 3], noise_pixels=2)
    good = modularity_explicitness(
        _sample(data, factors_and_noise(data), 300), _sample(data, factors_and_noise(data), 300, 1)
    )
    noise = modularity_explicitness(
        _sample(data, noise_only(data), 300), _sample(data, noise_only(data), 300, 1)
    )
    assert good.explicitness_test > 0.97
    assert abs(noise.explicitness_test - 0.5) < 0.1


# -- SAP ---------------------------------------------------------------------------------------
def test_sap_continuous_is_one_for_the_factors():
    data = FactorPixels([5, 7], noise_pixels=1)
    sample = _sample(data, factors_and_noise(data), 500)
    assert sap_score(sample, sample, continuous_factors=True) == pytest.approx(1.0, abs=0.02)


def test_sap_of_binary_factors_is_the_gap_to_chance():
    """Each code predicts its own binary factor perfectly and the other at chance (1/2)."""
    data = FactorPixels([2, 2], noise_pixels=0)
    representation = factors_and_noise(data)
    score = sap_score(_sample(data, representation, 400), _sample(data, representation, 400, 1))
    assert abs(score - 0.5) < 0.08


# -- β-VAE and FactorVAE scores -----------------------------------------------------------------
def _scores(metric, representation_of, seed=0):
    data = FactorPixels([3, 4, 5], noise_pixels=2)
    generator = torch.Generator().manual_seed(seed)
    encoder = FactorEncoder(data, representation_of(data), generator, SMALL.encode_batch_size)
    return metric(encoder, SMALL)


@pytest.mark.parametrize("metric", [beta_vae_score, factor_vae_score])
def test_group_scores_are_perfect_for_the_factors_and_near_chance_for_noise(metric):
    """The fixed factor's code does not move within a group (difference and variance exactly
    0), so both classifiers are right every time; noise codes carry no trace of the fixed
    factor (chance: 1/3)."""
    assert _scores(metric, factors_and_noise).eval_accuracy == 1.0
    assert _scores(metric, noise_only).eval_accuracy < 0.5


def test_factor_vae_score_leaves_collapsed_codes_out():
    def with_collapsed_code(_data):
        return lambda x: torch.cat([x.flatten(1), torch.full((len(x), 1), 0.3)], 1)

    score = _scores(factor_vae_score, with_collapsed_code)
    assert score.num_active_dims == 3 + 2
    assert score.eval_accuracy == 1.0


# -- everything together ---------------------------------------------------------------------
def test_compute_disentanglement_names_and_seed(capsys):
    data = FactorPixels([2, 3], noise_pixels=1)
    wanted = ("mig", "modularity", "explicitness", "factor_vae_score")
    first = compute_disentanglement(data, factors_and_noise(data), SMALL, wanted)
    again = compute_disentanglement(data, factors_and_noise(data), SMALL, wanted)
    scores = {k: v for k, v in first.items() if k in METRIC_NAMES}
    assert set(scores) == set(wanted)
    assert scores == {k: v for k, v in again.items() if k in METRIC_NAMES}
    assert first[ENCODED_KEY] > 0
    lines = capsys.readouterr().out.splitlines()  # not a terminal: plain lines per stage
    for label in ("FactorVAE score", "MIG", "modularity and explicitness"):
        assert any(line.startswith(f"{label}: done in ") for line in lines), label
    assert "FactorVAE score: about " in "\n".join(lines)
    assert set(wanted) <= set(METRIC_NAMES)


def test_shared_sample_metrics_equal_the_separate_ones_on_the_same_sample():
    """compute_disentanglement draws one training sample of max(num_train,
    num_variance_estimate) points and one held-out sample, first; each metric on its prefix
    equals that metric computed on its own sample of its size."""
    data = FactorPixels([2, 3], noise_pixels=1)
    representation = factors_and_noise(data)
    settings = DisentanglementSettings(
        num_train=150, num_eval=100, group_size=16, num_variance_estimate=300, seed=3
    )
    wanted = ("factor_vae_score", "mig", "sap", "modularity", "explicitness")
    shared = compute_disentanglement(data, representation, settings, wanted)
    generator = torch.Generator().manual_seed(settings.seed)
    train = sample_factor_codes(data, representation, 300, generator, 1024)
    test = sample_factor_codes(data, representation, 100, generator, 1024)
    own_train = FactorCodes(train.codes[:150], train.factors[:150])
    separate = modularity_explicitness(own_train, test)
    assert shared["mig"] == mutual_information_gap(own_train)
    assert shared["sap"] == sap_score(own_train, test)
    assert shared["modularity"] == separate.modularity
    assert shared["explicitness"] == separate.explicitness_test
    encoder = FactorEncoder(data, representation, generator, settings.encode_batch_size)
    factor_vae = factor_vae_score(encoder, settings, variance_sample=train)
    assert shared["factor_vae_score"] == factor_vae.eval_accuracy


def test_settings_refuse_sizes_that_cannot_work():
    with pytest.raises(VaelabError, match="group_size"):
        DisentanglementSettings(group_size=1)


TEST_SETTINGS = DisentanglementSettings(
    num_train=1000, num_eval=500, group_size=64, num_variance_estimate=1000
)


@pytest.mark.slow
def test_synthetic_representations_rank_as_the_definitions_say():
    table = synthetic_table(TEST_SETTINGS)
    best, rotation, copy, noise = (
        table[k] for k in ("factors+noise", "rotation", "duplicated", "noise")
    )
    for name in METRIC_NAMES:
        assert best[name] >= max(rotation[name], noise[name]) - 0.02, name
        # modularity only asks that each code be about one factor: noise codes, whose tiny
        # chance information differs between factors, are not at its bottom
        assert noise[name] < best[name], name
    for name in (
        "beta_vae_score",
        "factor_vae_score",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness",
        "explicitness",
    ):
        assert best[name] > 0.95, name
    assert best["mig"] > 0.9
    assert best["modularity"] > 0.85
    # a rotation mixes every factor into every code, but loses no information
    for name in ("mig", "sap", "dci_disentanglement"):
        assert rotation[name] < 0.5 * best[name], name
    assert rotation["explicitness"] > best["explicitness"] - 0.02
    # trees split one code at a time, so a rotation costs them data: 0.90 at 2000 points
    assert rotation["dci_informativeness"] > 0.75
    # a copied factor: two codes share it, yet each code is still about one factor
    for name in ("mig", "sap", "dci_completeness"):
        assert copy[name] < best[name] - 0.05, name
    assert copy["modularity"] > 0.95
    assert copy["dci_disentanglement"] > 0.95
    # noise: nothing predicts the factors
    for name in ("mig", "sap", "dci_disentanglement", "dci_completeness"):
        assert noise[name] < 0.05, name
    assert noise["explicitness"] < 0.55
