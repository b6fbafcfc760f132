"""vaelab.data.pairs: pairs of factor vectors that differ in exactly k factors (Locatello et al.
2020's weak supervision), checked over many draws per k, and the datamodules' batches of pairs."""

from __future__ import annotations

import pytest
import torch

from vaelab.data.dsprites import DSpritesDataModule
from vaelab.data.pairs import sample_pairs
from vaelab.data.xy_object import XYObjectDataModule
from vaelab.errors import VaelabError

DSPRITES = DSpritesDataModule.factor_sizes  # (3, 6, 40, 32, 32)
DRAWS = 5000


def _first(sizes, num=DRAWS, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(s, (num,), generator=generator) for s in sizes], 1)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_pairs_differ_in_exactly_k_factors_chosen_uniformly(k):
    first = _first(DSPRITES)
    pairs = sample_pairs(DSPRITES, first, k, torch.Generator().manual_seed(1))
    differs = pairs.first != pairs.second
    assert torch.equal(differs, pairs.changed)
    assert (differs.sum(1) == k).all()
    assert torch.equal(pairs.first, first)
    sizes = torch.tensor(DSPRITES)
    assert ((pairs.second >= 0) & (pairs.second < sizes)).all()
    # each factor is among the changed ones with probability k / 5 (binomial s.e. < 0.0071)
    frequency = differs.float().mean(0)
    assert torch.allclose(frequency, torch.full((5,), k / 5), atol=0.03)


def test_a_changed_factor_takes_each_other_value_equally_often():
    first = torch.zeros(DRAWS, 5, dtype=torch.long)  # every factor at index 0
    pairs = sample_pairs(DSPRITES, first, 5, torch.Generator().manual_seed(2))
    shapes = torch.bincount(pairs.second[:, 0], minlength=3).float() / DRAWS
    assert shapes[0] == 0  # never the old value
    assert torch.allclose(shapes[1:], torch.full((2,), 0.5), atol=0.03)
    scales = torch.bincount(pairs.second[:, 1], minlength=6).float() / DRAWS
    assert torch.allclose(scales[1:], torch.full((5,), 0.2), atol=0.03)


def test_random_k_is_uniform_over_one_to_f_minus_one():
    pairs = sample_pairs(DSPRITES, _first(DSPRITES), "random", torch.Generator().manual_seed(3))
    counts = torch.bincount(pairs.num_changed, minlength=6).float() / DRAWS
    assert counts[0] == 0  # never identical
    assert counts[5] == 0  # never all different
    assert torch.allclose(counts[1:5], torch.full((4,), 0.25), atol=0.03)
    assert torch.equal(pairs.num_changed, (pairs.first != pairs.second).sum(1))


def test_a_factor_with_one_value_never_changes_and_bad_k_is_refused():
    sizes = (4, 1, 3)
    pairs = sample_pairs(sizes, _first(sizes, 2000), "random", torch.Generator().manual_seed(4))
    assert (pairs.second[:, 1] == 0).all()
    assert (pairs.num_changed == 1).all()  # random: k in 1 … 2 − 1
    for bad in (3, 0, True):
        with pytest.raises(VaelabError, match="1 … 2 factors"):
            sample_pairs(sizes, pairs.first, bad)
    with pytest.raises(VaelabError, match=r"set data\.changed_factors=1"):
        sample_pairs((4, 1), _first((4, 1), 10), "random")


def test_the_same_generator_draws_the_same_pairs():
    first = _first(DSPRITES, 100)
    a = sample_pairs(DSPRITES, first, "random", torch.Generator().manual_seed(5))
    b = sample_pairs(DSPRITES, first, "random", torch.Generator().manual_seed(5))
    assert torch.equal(a.second, b.second)


def test_a_datamodule_with_pairs_batches_first_views_then_their_partners():
    datamodule = XYObjectDataModule("unused", batch_size=16, changed_factors=2)
    assert datamodule.data_info()["pairs"] == 2
    datamodule.setup("fit")
    x, factors = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert x.shape == (32, 3, 64, 64)
    assert factors.shape == (32, 4)
    first, second = factors[:16], factors[16:]
    assert ((first != second).sum(1) == 2).all()
    assert torch.equal(x, datamodule.observations_from_factors(factors))
    single = XYObjectDataModule("unused", batch_size=16)
    assert single.data_info()["pairs"] is None


def test_dsprites_refuses_more_changed_factors_than_it_has():
    with pytest.raises(VaelabError, match=r"data.changed_factors=6: a pair can differ in 1 … 5"):
        DSpritesDataModule("unused", changed_factors=6)
