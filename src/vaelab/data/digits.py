"""scikit-learn's bundled handwritten digits: 1797 images of 8×8 pixels, ten classes (the UCI
optical-recognition test set). Ships inside scikit-learn, so it needs no file and no network."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from vaelab.data.image_datamodule import PIXEL_MAX, ImageSplit
from vaelab.data.pooled_datamodule import PooledDataModule

#: the digits' grey levels are counts 0..16 (on-pixels in 4×4 blocks of a 32×32 bitmap)
DIGITS_MAX = 16


def digits_as_uint8(values: np.ndarray) -> np.ndarray:
    """Grey levels 0..16 → 0..255 by round(v · 255 / 16), so that /255 gives v / 16 to within
    half a grey level."""
    return np.rint(values * PIXEL_MAX / DIGITS_MAX).astype(np.uint8)


class DigitsDataModule(PooledDataModule):
    """The smallest real dataset, for demos and fast tests. ``data_dir`` and ``download`` are
    accepted like every datamodule's but unused; train/val/test are seeded splits of the pool."""

    image_shape = (1, 8, 8)
    num_classes = 10

    def load_pool(self) -> ImageSplit:
        digits = load_digits()
        images = torch.from_numpy(digits_as_uint8(digits.images)).unsqueeze(1).contiguous()
        return ImageSplit(images, torch.from_numpy(digits.target.astype(np.int64)))
