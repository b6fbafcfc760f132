"""Your own arrays: a NumPy ``.npz`` file as a data set (``data=npz``).

Arrays read (``np.load(..., allow_pickle=False)``; nothing else in the file is touched):

- ``x`` (required): the images, ``[N, H, W]`` (grey), ``[N, H, W, C]`` or ``[N, C, H, W]``
  with C = 1 or 3 (``layout=auto`` tells them apart by which axis is 1 or 3; set
  ``layout=NHWC`` or ``NCHW`` when both are). Values: ``uint8`` grey levels 0..255, ``bool``,
  or floats in [0, 1] (stored as round(255·x), i.e. to 1/255, like every data set here).
- ``y`` (optional): integer class labels ``[N]`` in 0..K−1 (−1: unlabelled); batches are
  (x, y) and ``num_classes`` = K.
- ``factors`` (optional, instead of ``y``): integer factor indices ``[N, F]`` (≥ 0), with
  optional ``factor_names`` ``[F]`` (strings). Batches are then (x, factors) and the module
  implements :class:`~vaelab.data.ground_truth.GroundTruthData` over the rows present.

Splits are seeded, as for the built-in pools: ``test_size`` held out first, then ``val_size``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from vaelab.data.image_datamodule import PIXEL_MAX, ImageSplit
from vaelab.data.pooled_datamodule import PooledDataModule
from vaelab.data.sprites import ravel
from vaelab.errors import VaelabError, first_line
from vaelab.schema import checked_arguments

Layout = Literal["auto", "NHWC", "NCHW"]
CHANNEL_COUNTS = (1, 3)
UNLABELLED = -1
#: grid positions are int64 keys: the factor grid must have fewer cells than this
MAX_GRID_CELLS = 2**62


def _has_factors(path: str) -> bool:
    """Whether the file lists a ``factors`` array (its zip directory only is read)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return "factors" in arrays.files
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError):
        return False  # a missing or bad file is reported, with its reason, when it is loaded


@checked_arguments("data")
class NpzDataModule(PooledDataModule):
    """Images (and labels or factors) from ``path``; see the module docstring for the arrays.
    A file with ``factors`` gives a :class:`FactorNpzDataModule`. ``data_dir`` and
    ``download`` are accepted like every datamodule's but unused."""

    def __new__(cls, *args, **kwargs):  # the arguments go to __init__
        path = kwargs.get("path")
        if cls is NpzDataModule and path is not None and _has_factors(path):
            cls = FactorNpzDataModule
        return super().__new__(cls)

    def __init__(self, *args, path: str, layout: Layout = "auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path = Path(path)
        self.layout = layout
        self.num_classes: int | None = None
        self.factors: Tensor | None = None
        self.factor_names_in_file: list[str] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of ``x`` (the file is read, once)."""
        return tuple(self._cached_pool().images.shape[1:])

    # -- reading --------------------------------------------------------------------------------
    def _bad(self, problem: str, fix: str) -> VaelabError:
        return VaelabError(f"{self.path}: {problem}; {fix}")

    def load_pool(self) -> ImageSplit:
        if not self.path.is_file():
            raise VaelabError(
                f"data.path={self.path}: no such file; point data.path at an .npz file with an "
                "array x of images (np.savez(path, x=images, y=labels))"
            )
        try:
            with np.load(self.path, allow_pickle=False) as arrays:
                contents = {name: arrays[name] for name in arrays.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise self._bad(
                f"not a readable .npz file ({first_line(err)})",
                "write it with np.savez(path, x=images) (object arrays are not read)",
            ) from err
        if not isinstance(contents, dict) or "x" not in contents:
            raise self._bad(
                f"no array x (it holds {', '.join(sorted(contents)) or 'nothing'})",
                "save the images under the name x: np.savez(path, x=images)",
            )
        images = self._images(contents["x"])
        if "y" in contents and "factors" in contents:
            raise self._bad(
                "it holds both y and factors, and batches carry one of them",
                "keep factors (for the disentanglement metrics) or y (class labels), not both",
            )
        labels = torch.full((len(images),), UNLABELLED, dtype=torch.int64)
        if "y" in contents:
            labels = self._labels(contents["y"], len(images))
        if "factors" in contents:
            labels = self.factors = self._factors(contents["factors"], len(images))
            self.factor_names_in_file = self._factor_names(contents.get("factor_names"))
        return ImageSplit(images, labels)

    def _images(self, x: np.ndarray) -> Tensor:
        if x.ndim not in (3, 4) or len(x) == 0:
            raise self._bad(
                f"x has shape {x.shape}",
                "x must be [N, H, W], [N, H, W, C] or [N, C, H, W] with N ≥ 1 and C = 1 or 3",
            )
        if x.ndim == 3:
            x = x[:, None]
        else:
            x = x.transpose(0, 3, 1, 2) if self._channels_last(x.shape) else x
        return torch.from_numpy(np.ascontiguousarray(self._as_uint8(x)))

    def _channels_last(self, shape: Sequence[int]) -> bool:
        if self.layout != "auto":
            return self.layout == "NHWC"
        last, first = shape[3] in CHANNEL_COUNTS, shape[1] in CHANNEL_COUNTS
        if last == first:
            raise self._bad(
                f"x has shape {tuple(shape)}: "
                + ("both axis 1 and axis 3 could be" if last else "neither axis 1 nor axis 3 is")
                + " the channel axis (1 or 3 channels)",
                "set data.layout=NHWC or data.layout=NCHW (and C = 1 or 3)",
            )
        return last

    def _as_uint8(self, x: np.ndarray) -> np.ndarray:
        if x.dtype == np.uint8:
            return x
        if x.dtype == np.bool_:
            return x.astype(np.uint8) * PIXEL_MAX
        if np.issubdtype(x.dtype, np.floating):
            finite = x[np.isfinite(x)]
            if finite.size < x.size or finite.min() < 0 or finite.max() > 1:
                low, high = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
                raise self._bad(
                    f"x holds floats outside [0, 1] (min {low:.4g}, max {high:.4g}, "
                    f"{x.size - finite.size} NaN/Inf)",
                    "scale float images to [0, 1] (or save uint8 grey levels 0..255)",
                )
            return np.rint(x * PIXEL_MAX).astype(np.uint8)
        raise self._bad(
            f"x has dtype {x.dtype}",
            "save it as uint8 (grey levels 0..255), bool, or float in [0, 1]",
        )

    def _integers(self, name: str, values: np.ndarray, shape: str, count: int) -> Tensor:
        if len(values) != count:
            raise self._bad(
                f"{name} has {len(values)} rows but x has {count} images",
                f"give one {name} row per image",
            )
        if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_):
            raise self._bad(f"{name} has dtype {values.dtype}", f"{name} must be integers {shape}")
        return torch.from_numpy(values.astype(np.int64))

    def _labels(self, y: np.ndarray, count: int) -> Tensor:
        if y.ndim != 1:
            raise self._bad(f"y has shape {y.shape}", "y must be class labels [N]")
        labels = self._integers("y", y, "[N]", count)
        if (labels < UNLABELLED).any():
            raise self._bad("y holds labels below −1", "labels must be 0..K−1 (−1: unlabelled)")
        self.num_classes = int(labels.max()) + 1 if (labels >= 0).any() else None
        return labels

    def _factors(self, factors: np.ndarray, count: int) -> Tensor:
        if factors.ndim != 2 or factors.shape[1] == 0:
            raise self._bad(f"factors has shape {factors.shape}", "factors must be [N, F] indices")
        values = self._integers("factors", factors, "[N, F]", count)
        if (values < 0).any():
            raise self._bad("factors holds negative values", "factors must be indices 0..K−1")
        if np.prod((values.amax(0) + 1).tolist(), dtype=float) >= MAX_GRID_CELLS:
            raise self._bad("the factor grid has over 2^62 cells", "use fewer or smaller factors")
        return values

    def _factor_names(self, names: np.ndarray | None) -> list[str] | None:
        if names is None:
            return None
        width = self.factors.shape[1]
        if names.shape != (width,) or names.dtype.kind not in "US":
            raise self._bad(
                f"factor_names is {names.dtype} {names.shape}",
                f"give {width} strings, one per factors column (or leave factor_names out)",
            )
        return [str(name) for name in names]


class FactorNpzDataModule(NpzDataModule):
    """An npz with ``factors``: :class:`GroundTruthData` over the file's rows (all splits).

    ``factor_sizes`` are 1 + the largest index of each column. ``sample_factors`` draws rows
    uniformly (so the factors follow the file's joint distribution, not a full grid);
    ``observations_from_factors`` looks each factor vector up (the first row holding it) and
    fails with one clear error on a combination the file does not hold. Observations are the
    stored grey levels in [0, 1] (no binarization).
    """

    #: a factor vector's observation is its first stored row
    deterministic_observations: bool = True

    def _pool_factors(self) -> Tensor:
        self._cached_pool()
        return self.factors

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(int(s) + 1 for s in self._pool_factors().amax(0))

    @property
    def factor_names(self) -> tuple[str, ...]:
        self._pool_factors()
        if self.factor_names_in_file is not None:
            return tuple(self.factor_names_in_file)
        return tuple(f"factor_{i}" for i in range(self.factors.shape[1]))

    def data_info(self) -> dict:
        info = super().data_info()
        info["factor_sizes"] = list(self.factor_sizes)
        info["factor_names"] = list(self.factor_names)
        return info

    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        factors = self._pool_factors()
        return factors[torch.randint(len(factors), (num,), generator=generator)]

    def observations_from_factors(
        self, factors: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        del generator  # the stored images carry no randomness
        stored = self._pool_factors()
        if factors.ndim != 2 or factors.shape[1] != stored.shape[1]:
            raise ValueError(
                f"factors must be [num, {stored.shape[1]}], got {tuple(factors.shape)}"
            )
        sizes = self.factor_sizes
        wanted = factors.cpu()
        inside = ((wanted >= 0) & (wanted < torch.tensor(sizes))).all(1)
        keys = torch.where(inside, ravel(wanted.clamp(min=0), sizes), -1)
        table, rows = torch.sort(ravel(stored, sizes), stable=True)
        at = torch.searchsorted(table, keys).clamp(max=len(table) - 1)
        found = table[at] == keys
        if not found.all():
            missing = wanted[~found][0].tolist()
            raise VaelabError(
                f"{self.path} holds no image with factors {missing} "
                f"({int((~found).sum())} of {len(wanted)} requested combinations are absent); the "
                "metrics need every combination they sample: use sample_factors (rows present)"
            )
        images = self._cached_pool().images.index_select(0, rows[at])
        return (images.to(factors.device) / PIXEL_MAX).to(torch.float32)
