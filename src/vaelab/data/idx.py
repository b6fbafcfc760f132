"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.), plain or gzipped."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from vaelab.errors import VaelabError

# third byte of the magic number → element type (IDX spec); MNIST uses only uint8
_IDX_TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_HEADER_BYTES = 4
_DIM_BYTES = 4


def read_idx(path: Path) -> torch.Tensor:
    """The array stored in an IDX file, checked against its own header.

    Raises :class:`VaelabError` naming the file when it is truncated or not IDX.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise VaelabError(
            f"{path} is corrupted ({err}); delete it and download it again, "
            "or point VAELAB_DATA_DIR at an intact copy"
        ) from err
    if len(raw) < _HEADER_BYTES or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise VaelabError(
            f"{path} is not an IDX file (bad magic number); replace it with the "
            "original MNIST/Fashion-MNIST file"
        )
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    offset = _HEADER_BYTES + _DIM_BYTES * ndim
    shape = tuple(
        int.from_bytes(
            raw[_HEADER_BYTES + _DIM_BYTES * i : _HEADER_BYTES + _DIM_BYTES * (i + 1)], "big"
        )
        for i in range(ndim)
    )
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise VaelabError(
            f"{path} is truncated or corrupted: header says {shape} "
            f"({expected} bytes) but the file holds {len(raw)} bytes; delete it "
            "and download it again, or point VAELAB_DATA_DIR at an intact copy"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")))
