"""The tests find the reference data through the variable vaelab reads, and say so."""

from __future__ import annotations

import pytest

from tests import conftest


def test_the_reference_data_is_found_through_vaelab_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path))
    assert conftest.reference_data_dir() == tmp_path
    monkeypatch.delenv("VAELAB_DATA_DIR")
    assert conftest.reference_data_dir() == conftest.PROJECT_ROOT.parent / "shared" / "data"


def test_a_skip_for_missing_data_names_the_variable(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="set VAELAB_DATA_DIR to the folder"):
        conftest._copy_tree(tmp_path / "absent", tmp_path / "copy")
