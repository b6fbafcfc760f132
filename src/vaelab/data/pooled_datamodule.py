"""Datasets shipped as a single pool of images (Frey Face, scikit-learn's digits).

The pool is split by seeded permutations: an optional test split first (``test_size``), then
the base class's train/val split of the rest. Without ``test_size`` the test split is the
validation split, as in seed 003 (which holds out 10 % of Frey Face and evaluates on it).
"""

from __future__ import annotations

import torch

from vaelab.data.image_datamodule import ImageDataModule, ImageSplit
from vaelab.errors import VaelabError
from vaelab.schema import SplitSize, checked_arguments

#: offset added to ``split_seed`` for the test permutation, so it differs from the val one
TEST_SPLIT_SEED_OFFSET = 7919


@checked_arguments("data")
class PooledDataModule(ImageDataModule):
    """Subclasses provide :meth:`load_pool`; the pool is read once and cached."""

    def __init__(self, *args, test_size: SplitSize | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.test_size = test_size
        self._pool: ImageSplit | None = None

    def load_pool(self) -> ImageSplit:
        """Every image of the dataset, uint8 [N, C, H, W], with labels (−1 if unlabelled)."""
        raise NotImplementedError

    def _cached_pool(self) -> ImageSplit:
        if self._pool is None:
            self._pool = self.load_pool()
        return self._pool

    def _num_test(self, pool_size: int) -> int:
        if isinstance(self.test_size, float):
            return max(1, round(self.test_size * pool_size))
        return int(self.test_size)

    def _test_indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(train-pool indices, test indices) of a seeded permutation of the pool."""
        pool_size = len(self._cached_pool())
        num_test = self._num_test(pool_size)
        if num_test >= pool_size:
            raise VaelabError(
                f"data.test_size={self.test_size} leaves no training data "
                f"({pool_size} examples); use a smaller data.test_size"
            )
        generator = torch.Generator().manual_seed(self.split_seed + TEST_SPLIT_SEED_OFFSET)
        order = torch.randperm(pool_size, generator=generator)
        return order[num_test:], order[:num_test]

    def load_train(self) -> ImageSplit:
        pool = self._cached_pool()
        if self.test_size is None:
            return pool
        keep, _ = self._test_indices()
        return ImageSplit(pool.images[keep], pool.labels[keep])

    def load_test(self) -> ImageSplit | None:
        if self.test_size is None:
            return None
        pool = self._cached_pool()
        _, held_out = self._test_indices()
        return ImageSplit(pool.images[held_out], pool.labels[held_out])
