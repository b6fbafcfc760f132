"""vaelab.evaluation.checkpoint: a corrupt run config is one clear error in vaelab-eval; a run
dir with a torn last.ckpt is evaluated from its good checkpoint."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.tiny_digits_run import digits_config, small_checkpoint
from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT
from vaelab.train import train


def test_a_corrupt_run_config_is_one_clear_error_in_eval(tmp_path):
    from vaelab.eval import evaluate

    run_dir = tmp_path / "run"
    train(digits_config(tmp_path, "test=false"))
    (run_dir / CONFIG_FILE).write_text("model: [unclosed\n  latent_dim: 2\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={run_dir}", "print_summary=false"])
    with pytest.raises(VaelabError, match=r"config .*config.yaml is unreadable .*\.hydra"):
        evaluate(cfg)


def test_eval_of_a_run_dir_with_a_torn_last_ckpt_uses_its_good_checkpoint(tmp_path):
    from vaelab.evaluation.checkpoint import locate_checkpoint

    checkpoints = tmp_path / CHECKPOINT_DIR
    checkpoints.mkdir()
    (tmp_path / CONFIG_FILE).write_text("model: {}\ndata: {}\n")
    torch.save(small_checkpoint(4), checkpoints / "epoch_001.ckpt")
    (checkpoints / LAST_CHECKPOINT).write_bytes(b"PK\x03\x04 torn")
    assert locate_checkpoint(tmp_path).checkpoint == checkpoints / "epoch_001.ckpt"
