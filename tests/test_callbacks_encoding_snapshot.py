"""vaelab.callbacks.encoding_snapshot, the epoch-0 encoding snapshot callback: what it stores,
and that it leaves training's random stream alone (dynamic binarization draws bits while
encoding)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from hydra.utils import instantiate

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.callbacks.encoding_snapshot import EncodingSnapshot
from vaelab.evaluation.encodings import load_encodings


def test_snapshot_stores_codes_and_keeps_the_rng_state(mnist_data_dir, tmp_path):
    cfg = compose_config(
        [*FAST, f"paths.data_dir={mnist_data_dir}", "data.binarize=dynamic", "model.latent_dim=3"],
        tmp_path / "run",
    )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    module = build_module(cfg, datamodule.dims)
    trainer = SimpleNamespace(
        global_step=0, current_epoch=0, is_global_zero=True, datamodule=datamodule
    )
    path = tmp_path / "run" / "encodings" / "epoch000.pt"
    torch.manual_seed(7)
    before = torch.get_rng_state()
    EncodingSnapshot(str(path), num_points=150).on_train_start(trainer, module)
    assert torch.equal(torch.get_rng_state(), before)
    assert module.training  # put back in training mode
    snapshot = load_encodings(path)
    labels = datamodule.splits["test"].labels[:150]
    assert snapshot.mean.shape == (150, 3)
    assert torch.equal(snapshot.labels, labels)
    assert (snapshot.stddev > 0).all()
    assert snapshot.split == "test"
    # a resumed run (global step > 0) keeps the original file untouched
    stamp = path.stat().st_mtime_ns
    EncodingSnapshot(str(path), num_points=10).on_train_start(
        SimpleNamespace(**{**vars(trainer), "global_step": 5}), module
    )
    assert path.stat().st_mtime_ns == stamp
    assert len(load_encodings(path)) == 150
