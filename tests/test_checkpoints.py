"""vaelab.checkpoints: any bytes in a checkpoint's place are refused with one message."""

from __future__ import annotations

import pytest

from vaelab.checkpoints import load_checkpoint
from vaelab.errors import VaelabError


@pytest.mark.parametrize("content", [b"a" * 64, b"\x80\x02}q\x00.", b"PK\x03\x04 torn"])
def test_any_bytes_in_a_checkpoints_place_are_refused(tmp_path, content):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(VaelabError, match="refused to load"):
        load_checkpoint(path)
