"""vaelab.run_history: extending a finished run (resume=force and a larger max_epochs) keeps
every file it had finished with, byte for byte, beside the new best/last pair and metrics."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.conftest import compose_config
from tests.test_run_config import TWO_EPOCHS, file_hashes
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, EVAL_DIR, LAST_CHECKPOINT, METRICS_FILE
from vaelab.run_history import keep_finished_run
from vaelab.train import train


def test_the_kept_files_survive_the_originals_being_replaced_or_deleted(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True)
    (run_dir / CHECKPOINT_DIR / "epoch_001.ckpt").write_bytes(b"best of 2 epochs")
    (run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).write_bytes(b"last of 2 epochs")
    (run_dir / METRICS_FILE).write_text('{"test/elbo": -40.0}')
    (run_dir / EVAL_DIR).mkdir()
    (run_dir / EVAL_DIR / METRICS_FILE).write_text('{"iw_nll": 39.0}')
    (run_dir / CONFIG_FILE).write_text("seed: 1\n")
    kept = keep_finished_run(run_dir, epochs=2)
    # what the extended run then does: deletes the old best, renames a new last.ckpt over it
    (run_dir / CHECKPOINT_DIR / "epoch_001.ckpt").unlink()
    new_last = run_dir / CHECKPOINT_DIR / "new.tmp"
    new_last.write_bytes(b"last of 3 epochs")
    new_last.replace(run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT)
    assert kept.checkpoints == run_dir / CHECKPOINT_DIR / "finished_2"
    assert (kept.checkpoints / "epoch_001.ckpt").read_bytes() == b"best of 2 epochs"
    assert (kept.checkpoints / LAST_CHECKPOINT).read_bytes() == b"last of 2 epochs"
    assert (run_dir / "metrics.2.json").read_text() == '{"test/elbo": -40.0}'
    assert (run_dir / "eval.2" / METRICS_FILE).read_text() == '{"iw_nll": 39.0}'
    assert (run_dir / "config.2.yaml").read_text() == "seed: 1\n"
    assert not (run_dir / METRICS_FILE).exists()
    assert not (run_dir / EVAL_DIR).exists()
    again = keep_finished_run(run_dir, epochs=2)  # extended twice from the same epoch
    assert again.checkpoints.name == "finished_2-1"
    assert (again.checkpoints / LAST_CHECKPOINT).read_bytes() == b"last of 3 epochs"


@pytest.mark.slow
def test_extending_a_finished_run_with_resume_force_keeps_the_old_results_beside_the_new(
    tmp_path,
):
    run_dir = tmp_path / "run"
    train(compose_config(TWO_EPOCHS, run_dir))
    before = file_hashes(run_dir / CHECKPOINT_DIR)
    old_metrics = (run_dir / METRICS_FILE).read_text()
    extended = train(
        compose_config(
            [*TWO_EPOCHS, "trainer.max_epochs=3", "resume=force", f"ckpt_path={run_dir}"],
            tmp_path / "new",
        )
    )
    kept = run_dir / CHECKPOINT_DIR / "finished_2"
    assert file_hashes(kept) == before  # epoch_001.ckpt and last.ckpt, byte-identical
    assert (run_dir / "metrics.2.json").read_text() == old_metrics
    assert json.loads((run_dir / METRICS_FILE).read_text()) == pytest.approx(extended)
    last = torch.load(run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT, weights_only=True)
    assert last["global_step"] == 6
    assert "max_epochs: 3" in (run_dir / CONFIG_FILE).read_text()
    assert "max_epochs: 2" in (run_dir / "config.2.yaml").read_text()


@pytest.mark.slow
def test_init_from_starts_a_new_run_from_the_runs_best_weights(tmp_path):
    source = tmp_path / "source"
    train(compose_config(TWO_EPOCHS, source))
    shutil.copy(source / CONFIG_FILE, tmp_path / "source_config.yaml")
    # a learning rate so small that one epoch leaves the weights as they were loaded
    train(
        compose_config(
            [*TWO_EPOCHS, "trainer.max_epochs=1", "optimizer.lr=1e-30", f"init_from={source}"],
            tmp_path / "new",
        )
    )
    best = torch.load(source / CHECKPOINT_DIR / "epoch_001.ckpt", weights_only=True)
    started = torch.load(tmp_path / "new" / CHECKPOINT_DIR / LAST_CHECKPOINT, weights_only=True)
    assert started["global_step"] == 2  # a new run: step 0 to 2, not on from the source's 4
    for name, weights in best["state_dict"].items():
        assert torch.allclose(started["state_dict"][name], weights, atol=1e-12), name
    assert (source / CONFIG_FILE).read_text() == (tmp_path / "source_config.yaml").read_text()
