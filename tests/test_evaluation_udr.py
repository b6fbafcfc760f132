"""UDR (Duan et al. 2020) on codes whose answer is known exactly: latents on a full factorial
grid are exactly uncorrelated, so a model compared with itself (or a signed permutation of
itself) scores 1 by Spearman and 1 − α by the Lasso (the soft-threshold of an orthogonal
design); a rotation of it scores lower and pure noise lowest; the pair score matches the
paper's formula on small matrices; the KL filter drops the latents that carry nothing; the
per-latent KL is torch's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.errors import VaelabError
from vaelab.evaluation.udr import (
    LASSO_ALPHA,
    ModelCodes,
    encode_for_udr,
    lasso_similarity,
    pairwise_score,
    spearman_similarity,
    udr_scores,
)
from vaelab.priors.standard_normal import StandardNormalPrior

#: every latent informative
ACTIVE = torch.ones(3)


def grid_codes() -> torch.Tensor:
    """27 codes on {−1, 0, 1}³: each pair of latents has sample correlation exactly 0."""
    return torch.tensor(list(itertools.product([-1.0, 0.0, 1.0], repeat=3)))


def rotated(codes: torch.Tensor, seed: int = 0) -> torch.Tensor:
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    return codes @ rotation


def noise(seed: int) -> torch.Tensor:
    return torch.randn(27, 3, generator=torch.Generator().manual_seed(seed))


def test_identical_models_score_one_and_a_signed_permutation_does_too():
    grid = grid_codes()
    flipped = grid[:, [2, 0, 1]] * torch.tensor([1.0, -1.0, 1.0])
    for other in (grid, flipped):
        spearman = udr_scores([ModelCodes(grid, ACTIVE), ModelCodes(other, ACTIVE)], "spearman")
        assert spearman.pairwise[0, 1] == pytest.approx(1.0, abs=1e-12)
        assert spearman.model_scores == pytest.approx([1.0, 1.0], abs=1e-12)
        lasso = udr_scores([ModelCodes(grid, ACTIVE), ModelCodes(other, ACTIVE)], "lasso")
        assert lasso.model_scores == pytest.approx([1 - LASSO_ALPHA] * 2, abs=1e-9)


@pytest.mark.parametrize("similarity", ["spearman", "lasso"])
def test_a_rotation_ranks_lower_and_pure_noise_lowest(similarity):
    grid = grid_codes()
    models = [
        ModelCodes(grid, ACTIVE),
        ModelCodes(grid.clone(), ACTIVE),
        ModelCodes(rotated(grid), ACTIVE),
        ModelCodes(noise(1), ACTIVE),
    ]
    scores = udr_scores(models, similarity)
    identical, with_rotation, with_noise = (
        scores.pairwise[0, 1],
        scores.pairwise[0, 2],
        scores.pairwise[0, 3],
    )
    assert identical > with_rotation + 0.2
    assert with_rotation > with_noise
    assert int(np.argmin(scores.model_scores)) == 3  # the noise model ranks last
    assert scores.model_scores[3] < min(scores.model_scores[:3])


def test_pair_score_is_the_papers_formula_on_small_matrices():
    assert pairwise_score(np.eye(3)) == 1.0
    # two latents of each model share one: columns 1/2 + 1/2 + 1, rows the same, over 3 + 3
    blocks = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert pairwise_score(blocks) == pytest.approx(4 / 6)
    assert pairwise_score(np.ones((3, 3))) == pytest.approx(2 / 6)
    assert pairwise_score(np.zeros((3, 3))) == 0.0
    # d_a = 1, d_b = 2: (1 + 0 + 1) / (1 + 2); disentanglement_lib's mean of means gives 0.75
    assert pairwise_score(np.array([[1.0, 0.0]])) == pytest.approx(2 / 3)
    assert pairwise_score(np.zeros((0, 3))) == 0.0


def test_similarity_matrices_against_their_definitions():
    generator = np.random.default_rng(0)
    codes_i, codes_j = generator.normal(size=(50, 2)), generator.normal(size=(50, 3))
    spearman = spearman_similarity(codes_i, codes_j)
    assert spearman.shape == (2, 3)
    from scipy.stats import spearmanr

    assert spearman[1, 2] == pytest.approx(abs(spearmanr(codes_i[:, 1], codes_j[:, 2]).statistic))
    # a target that is 2 × latent 0 (standardised: exactly latent 0) gets weight 1 − α there
    lasso = lasso_similarity(codes_i, np.c_[2 * codes_i[:, 0], codes_j[:, :1]])
    assert lasso.shape == (2, 2)
    assert lasso[0, 0] == pytest.approx(1 - LASSO_ALPHA, abs=1e-3)
    assert lasso[1, 0] == pytest.approx(0.0, abs=1e-6)


def test_the_kl_filter_drops_latents_that_carry_nothing():
    grid = grid_codes()
    kl = torch.tensor([0.5, 0.5, 0.5, 1e-4])  # the 4th latent: KL to the prior ≈ 0
    models = [ModelCodes(torch.cat([grid, noise(seed)[:, :1]], 1), kl) for seed in (1, 2)]
    assert models[0].informative().tolist() == [True, True, True, False]
    filtered = udr_scores(models, "spearman")
    assert filtered.informative == [3, 3]
    assert filtered.model_scores == pytest.approx([1.0, 1.0], abs=1e-12)
    unfiltered = udr_scores(models, "spearman", kl_threshold=float("-inf"))
    assert unfiltered.informative == [4, 4]
    assert max(unfiltered.model_scores) < 0.9


def test_a_model_alone_in_its_group_has_no_score_and_groups_are_not_mixed():
    grid = grid_codes()
    models = [ModelCodes(grid, ACTIVE), ModelCodes(grid, ACTIVE), ModelCodes(noise(1), ACTIVE)]
    scores = udr_scores(models, "spearman", groups=[[0, 1], [2]])
    assert scores.model_scores[:2] == pytest.approx([1.0, 1.0], abs=1e-12)
    assert np.isnan(scores.model_scores[2])
    assert np.isnan(scores.pairwise[0, 2])


def test_codes_of_different_sizes_are_refused_in_one_line():
    with pytest.raises(VaelabError, match="one latent size") as refused:
        udr_scores([ModelCodes(grid_codes(), ACTIVE), ModelCodes(noise(0)[:, :2], ACTIVE[:2])])
    assert "\n" not in str(refused.value)


class _TinyEncoderModel(torch.nn.Module):
    """q(z|x) = N(x W, diag σ²) with a standard normal prior: enough of the model interface
    for :func:`encode_for_udr`."""

    conditions_on = None

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.3, 0.0]])
        self.scale = torch.tensor([0.5, 0.9, 1.0])
        self.prior = StandardNormalPrior()
        self.prior.setup(3, (2,), self.encode)

    def encode(self, x, y=None):  # noqa: ARG002
        return Independent(Normal(x @ self.weight, self.scale.expand(len(x), 3)), 1)

    def latent_codes(self, x, y=None):
        return self.encode(x, y)


def test_encoding_gives_the_means_and_torchs_mean_kl_per_latent():
    model = _TinyEncoderModel()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    encoded = encode_for_udr(model, x)
    q = Normal(x @ model.weight, model.scale.expand(64, 3))
    expected = kl_divergence(q, Normal(0.0, 1.0)).mean(0)
    assert torch.allclose(encoded.codes, x @ model.weight)
    assert torch.allclose(encoded.kl_per_dimension, expected.double(), atol=1e-6)
    assert encoded.informative().tolist() == [True, True, False]  # N(0, 1) carries nothing
