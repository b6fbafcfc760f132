"""Brendan Frey's faces: 1965 grey-level frames of 28×20 pixels, unlabelled (Kingma & Welling
2014, §5; seed 003). Read from Sam Roweis' ``frey_rawface.mat`` or a ``frey_faces.npy`` copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch
from torchvision.datasets.utils import download_url

from vaelab.data.image_datamodule import ImageSplit
from vaelab.data.pooled_datamodule import PooledDataModule
from vaelab.errors import VaelabError

FOLDER = "frey"
MAT_FILE = "frey_rawface.mat"
MAT_VARIABLE = "ff"  # uint8 [H·W, N]: one flattened (row-major) frame per column
NPY_FILE = "frey_faces.npy"  # uint8 [N, H, W] = ff.T.reshape(-1, H, W)
MAT_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
MAT_MD5 = "5aeb024d42b8a6091f30e5eb18c8a48d"
UNLABELLED = -1


class FreyFaceDataModule(PooledDataModule):
    """Frey Face from ``<data_dir>/frey/frey_rawface.mat`` (preferred) or ``frey_faces.npy``.

    Seed 003 splits the 1965 frames 90/10 into train/val (sklearn's ``train_test_split(…,
    test_size=0.1)``: 1768/197) and evaluates on val; here ``val_size`` and ``split_seed`` set
    that split and the test split is the val split unless ``test_size`` is given.
    Labels are −1 (the dataset has none). Pixels are stored as uint8 and scaled to [0, 1].
    """

    image_shape = (1, 28, 20)
    num_classes = None

    @property
    def folder(self) -> Path:
        return Path(self.data_dir) / FOLDER

    def load_pool(self) -> ImageSplit:
        frames = self._read_frames()
        images = torch.from_numpy(np.ascontiguousarray(frames)).unsqueeze(1)
        labels = torch.full((len(images),), UNLABELLED, dtype=torch.long)
        return ImageSplit(images, labels)

    def _read_frames(self) -> np.ndarray:
        mat, npy = self.folder / MAT_FILE, self.folder / NPY_FILE
        if not mat.is_file() and not npy.is_file() and self.download:
            self._download()
        if mat.is_file():
            return self._read_mat(mat)
        if npy.is_file():
            return self._read_npy(npy)
        raise VaelabError(
            f"Frey Face data not found: expected {MAT_FILE} (or {NPY_FILE}) in {self.folder}. "
            f"Fix: set VAELAB_DATA_DIR to a folder that holds {FOLDER}/{MAT_FILE} (Sam Roweis' "
            f"file, {MAT_URL}), or keep data.download=true on a machine with network access."
        )

    def _download(self) -> None:
        try:
            download_url(MAT_URL, str(self.folder), MAT_FILE, MAT_MD5)
        except Exception as err:  # offline: URLError, socket errors, md5 mismatch …
            raise VaelabError(
                f"Frey Face data not found in {self.folder} and downloading {MAT_URL} failed "
                f"({type(err).__name__}: {err}). Fix: copy {MAT_FILE} into {self.folder} or "
                "point VAELAB_DATA_DIR at a folder that holds it."
            ) from err

    def _corrupt(self, path: Path, problem: str) -> VaelabError:
        return VaelabError(
            f"{path} is not a valid Frey Face file ({problem}); replace it with "
            f"the original {MAT_FILE} ({MAT_URL}) or point VAELAB_DATA_DIR at an "
            "intact copy"
        )

    def _read_mat(self, path: Path) -> np.ndarray:
        try:
            contents = scipy.io.loadmat(str(path))
        except Exception as err:  # scipy raises many types on a damaged file (IndexError, …)
            raise self._corrupt(path, f"cannot be read as a MATLAB file: {err}") from err
        if MAT_VARIABLE not in contents:
            raise self._corrupt(path, f"it has no variable {MAT_VARIABLE!r}")
        _, height, width = self.image_shape
        columns = np.asarray(contents[MAT_VARIABLE])
        if columns.ndim != 2 or columns.shape[0] != height * width:
            raise self._corrupt(
                path,
                f"{MAT_VARIABLE!r} has shape {columns.shape}, expected "
                f"({height * width}, N) for {height}×{width} frames",
            )
        return self._checked_uint8(path, columns.T.reshape(-1, height, width))

    def _read_npy(self, path: Path) -> np.ndarray:
        try:
            frames = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise self._corrupt(path, f"cannot be read as a .npy array: {err}") from err
        expected = self.image_shape[1:]
        if frames.ndim != 3 or frames.shape[1:] != expected:
            raise self._corrupt(
                path, f"array shape {frames.shape}, expected (N, {', '.join(map(str, expected))})"
            )
        return self._checked_uint8(path, frames)

    def _checked_uint8(self, path: Path, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            raise self._corrupt(path, "it holds no frames")
        if frames.dtype == np.uint8:
            return frames
        values = frames.astype(np.float64)
        whole = np.all(np.isfinite(values)) and np.all(values == np.round(values))
        if not whole or values.min() < 0 or values.max() > np.iinfo(np.uint8).max:
            raise self._corrupt(path, f"pixels of dtype {frames.dtype} are not grey levels 0..255")
        return values.astype(np.uint8)
