"""The VQ-VAE's priors over code grids (van den Oord et al. 2017, §3.1–3.2): the uniform prior's
constant h·w·log K, its refusal to sample, the PixelCNN prior's density and samples as index
grids and as flat code maps through the model's maps."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.priors.code_grid import PixelCNNCodePrior, UniformCodePrior

GRID, CODES, DIM = (2, 3), 5, 2
#: a toy codebook: code k is the vector (k, −k)
VECTORS = torch.stack([torch.arange(CODES).float(), -torch.arange(CODES).float()], 1)


def attach_toy_codebook(prior) -> None:
    """The maps a VQ-VAE attaches: flat code maps [..., D·h·w] ↔ index grids [..., h, w]."""

    def codes_of(indices: torch.Tensor) -> torch.Tensor:
        return VECTORS[indices].movedim(-1, -3).flatten(-3)

    def indices_of(z: torch.Tensor) -> torch.Tensor:
        return z.unflatten(-1, (DIM, *GRID))[..., 0, :, :].round().long()

    prior.attach(indices_of, codes_of)


def test_uniform_prior_is_hw_log_k_and_refuses_to_sample():
    prior = UniformCodePrior(GRID, CODES)
    attach_toy_codebook(prior)
    indices = torch.randint(CODES, (4, *GRID), generator=torch.Generator().manual_seed(0))
    expected = torch.full((4,), -6 * math.log(CODES))
    torch.testing.assert_close(prior.log_prob_of_indices(indices), expected)
    codes = VECTORS[indices].movedim(-1, -3).flatten(-3)
    torch.testing.assert_close(prior.log_prob(codes), expected)
    torch.testing.assert_close(prior.distribution().log_prob(indices), expected)
    assert not prior.samples
    with pytest.raises(VaelabError, match="nothing to sample"):
        prior.sample(2)


def test_pixelcnn_prior_scores_and_draws_index_grids_and_code_maps():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=CODES, channels=6, layers=2, kernel_size=3)
    prior = PixelCNNCodePrior(GRID, CODES, net)
    attach_toy_codebook(prior)
    assert prior.samples
    indices = torch.randint(CODES, (3, *GRID), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(prior.log_prob_of_indices(indices), net.log_prob(indices))
    codes = VECTORS[indices].movedim(-1, -3).flatten(-3)
    torch.testing.assert_close(prior.log_prob(codes), net.log_prob(indices))
    torch.testing.assert_close(prior.distribution().log_prob(indices), net.log_prob(indices))
    drawn = prior.sample_indices(4, torch.Generator().manual_seed(2))
    assert drawn.shape == (4, *GRID)
    assert drawn.min() >= 0
    assert drawn.max() < CODES
    assert prior.sample(3).shape == (3, DIM * math.prod(GRID))
    assert prior.distribution().sample((2, 2)).shape == (2, 2, *GRID)


def test_pixelcnn_prior_of_another_codebook_size_is_refused():
    with pytest.raises(VaelabError, match="models 4 codes but the codebook has 5"):
        PixelCNNCodePrior(GRID, CODES, GatedPixelCNN(num_codes=4, channels=4, layers=1))
