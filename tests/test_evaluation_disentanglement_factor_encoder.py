"""vaelab.evaluation.disentanglement.factor_encoder: each distinct observation of
deterministic data is encoded once (counted encoder calls), the codes are those of direct
encoding, random observations are all encoded, and the expected count of new encodings."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from tests.ground_truth_toy import FactorPixels, factors_and_noise
from vaelab.evaluation.disentanglement import (
    ENCODED_KEY,
    DisentanglementSettings,
    compute_disentanglement,
)
from vaelab.evaluation.disentanglement.factor_encoder import FactorEncoder, group_steps
from vaelab.evaluation.disentanglement.sampling import encode_factors
from vaelab.stage_progress import stage

SIZES = (2, 3, 4)
GRID = math.prod(SIZES)


class CountingRepresentation:
    """The factors-and-noise representation, counting the observations it sees."""

    def __init__(self, data: FactorPixels) -> None:
        self.inner = factors_and_noise(data)
        self.seen = 0

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        self.seen += len(observations)
        return self.inner(observations)


def _encoder(noise_pixels: int, batch_size: int = 7):
    data = FactorPixels(SIZES, noise_pixels=noise_pixels)
    representation = CountingRepresentation(data)
    generator = torch.Generator().manual_seed(0)
    return FactorEncoder(data, representation, generator, batch_size), representation


def test_each_distinct_observation_is_encoded_once_and_codes_match_direct_encoding():
    encoder, representation = _encoder(noise_pixels=0)
    assert encoder.caches
    factors = encoder.data.sample_factors(500, torch.Generator().manual_seed(1))
    codes = encoder.codes(factors)
    distinct = len(torch.unique(factors, dim=0))
    assert representation.seen == encoder.encoded == distinct
    direct = encode_factors(
        encoder.data, factors_and_noise(encoder.data), factors, torch.Generator(), 64
    )
    np.testing.assert_allclose(codes, direct, rtol=0, atol=1e-6)
    encoder.codes(factors[:100])  # all known: no new encodings
    assert representation.seen == distinct


def test_random_observations_are_all_encoded():
    encoder, representation = _encoder(noise_pixels=2)
    assert not encoder.caches
    encoder.codes(encoder.data.sample_factors(300, torch.Generator().manual_seed(1)))
    assert representation.seen == encoder.encoded == 300


def test_expected_encodings_of_uniform_draws():
    encoder, _ = _encoder(noise_pixels=0)
    assert encoder.expected_encodings(1) == 1
    assert encoder.expected_encodings(GRID) == round(GRID * (1 - (1 - 1 / GRID) ** GRID))
    encoder.codes(torch.cartesian_prod(*(torch.arange(s) for s in SIZES)))
    assert encoder.expected_encodings(1000) == 0
    noisy, _ = _encoder(noise_pixels=2)
    assert noisy.expected_encodings(1000) == 1000


def test_group_steps_cover_every_group_in_large_steps():
    steps = list(group_steps(10_000, 128))
    assert sum(steps) == 10_000
    assert steps[0] == (1 << 16) // 128


def test_progress_advances_by_each_encoded_batch():
    encoder, _ = _encoder(noise_pixels=2, batch_size=7)
    stream = io.StringIO()
    with stage("codes", 20, "encodings", stream=stream, line_interval=0.0) as progress:
        encoder.progress = progress
        encoder.codes(encoder.data.sample_factors(20, torch.Generator().manual_seed(1)))
    assert progress.done == 20
    percents = [
        line.split("%")[0].split()[-1] for line in stream.getvalue().splitlines() if "%" in line
    ]
    assert percents == ["35", "70"]  # after 7 and 14 of 20


def test_a_whole_evaluation_encodes_at_most_the_grid():
    data = FactorPixels(SIZES, noise_pixels=0)
    representation = CountingRepresentation(data)
    settings = DisentanglementSettings(
        num_train=100, num_eval=50, group_size=8, num_variance_estimate=100
    )
    scores = compute_disentanglement(
        data, representation, settings, ("beta_vae_score", "factor_vae_score", "mig")
    )
    assert representation.seen == scores[ENCODED_KEY] == GRID
    assert scores["beta_vae_score"] == pytest.approx(1.0)
