"""vaelab.data.digits: scikit-learn's digits with honestly scaled grey levels and their labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from tests.datamodule_checks import frame_counts
from vaelab.data.digits import DigitsDataModule
from vaelab.errors import VaelabError


# -- scikit-learn digits ---------------------------------------------------------------------
def test_digits_scale_grey_levels_honestly_and_keep_labels():
    reference = load_digits()
    dm = DigitsDataModule("unused", batch_size=100, val_size=180, test_size=180)
    assert dm.dims == (1, 8, 8)
    assert dm.num_classes == 10
    pool = dm.load_pool()
    assert pool.images.shape == (1797, 1, 8, 8)
    assert pool.images.dtype == torch.uint8
    expected = np.rint(reference.images * 255 / 16)
    assert np.array_equal(pool.images[:, 0].numpy(), expected)
    assert np.array_equal(pool.labels.numpy(), reference.target)
    # 0 → 0, 16 → 255, and /255 recovers v/16 to within half a grey level
    assert pool.images.min() == 0
    assert pool.images.max() == 255
    recovered = pool.images[:, 0].double().numpy() / 255
    assert np.abs(recovered - reference.images / 16).max() <= 0.5 / 255 + 1e-12
    dm.setup("fit")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [1437, 180, 180]
    together = sum((frame_counts(s.images) for s in dm.splits.values()), Counter())
    assert together == frame_counts(pool.images)


def test_digits_test_size_must_leave_training_data():
    dm = DigitsDataModule("unused", batch_size=10, val_size=10, test_size=1797)
    with pytest.raises(VaelabError, match="test_size"):
        dm.setup("fit")
