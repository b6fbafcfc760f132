"""vaelab.run_config: a run dir belongs to its config. A command that continues a run takes the
run's config for what it does not set, is refused for what it sets otherwise (unless the key
only extends the run, or resume=force), and a finished run is left byte-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_config
from tests.tiny_digits_run import DIGITS
from vaelab.errors import VaelabError
from vaelab.run_config import reconcile, relocated
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT, METRICS_FILE
from vaelab.train import train

RUN = {
    "seed": 1,
    "paths": {"output_dir": "/old/run"},
    "trainer": {"max_epochs": 2, "max_steps": -1},
    "model": {"_target_": "Conv", "latent_dim": 2, "channels": [8, 16]},
    "callbacks": {"model_checkpoint": {"dirpath": "/old/run/checkpoints"}},
}


def _command(**changes) -> dict:
    command = json.loads(json.dumps(RUN))
    command["paths"]["output_dir"] = "/new/run"
    command["callbacks"]["model_checkpoint"]["dirpath"] = "/new/run/checkpoints"
    command["trainer"]["max_epochs"] = 50  # the command's default
    for key, value in changes.items():
        node = command
        *parents, last = key.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return command


def test_keys_the_command_does_not_set_take_the_runs_values():
    result = reconcile(_command(seed=7), RUN, explicit=[])
    assert result.conflicts == []
    assert result.extended == []
    assert result.config["trainer"]["max_epochs"] == 2  # not the command's default 50
    assert result.config["seed"] == 1
    assert result.config["paths"]["output_dir"] == "/new/run"  # run mechanics: the command's
    assert result.config["callbacks"]["model_checkpoint"]["dirpath"] == "/new/run/checkpoints"
    newer = reconcile(_command(module={"compile": False}), RUN, explicit=[])
    assert newer.config["module"] == {"compile": False}  # a key the run's vaelab did not have
    added = reconcile(_command(), {**RUN, "extra": {"_target_": "Cb"}}, explicit=[])
    assert added.config["extra"] == {"_target_": "Cb"}  # what the run added with + stays


def test_a_key_the_command_sets_otherwise_is_a_conflict_a_larger_limit_an_extension():
    result = reconcile(
        _command(model__latent_dim=5, trainer__max_epochs=4), RUN, ["model.latent_dim", "trainer"]
    )
    assert [(d.key, d.run_value, d.command_value) for d in result.conflicts] == [
        ("model.latent_dim", 2, 5)
    ]
    assert [d.key for d in result.extended] == ["trainer.max_epochs"]
    shorter = reconcile(_command(trainer__max_epochs=1), RUN, ["trainer.max_epochs"])
    assert [d.key for d in shorter.conflicts] == ["trainer.max_epochs"]
    unfinished = reconcile(_command(trainer__max_epochs=1), RUN, ["trainer"], finished=False)
    assert unfinished.conflicts == []
    assert unfinished.config["trainer"]["max_epochs"] == 1
    unlimited = reconcile(_command(trainer__max_steps=-1), {**RUN}, ["trainer.max_steps"])
    assert unlimited.conflicts == []


def test_another_group_option_replaces_the_whole_node_or_is_a_conflict():
    other_model = {"_target_": "Mlp", "latent_dim": 2, "hidden_dims": [400]}
    taken = reconcile(_command(model=other_model), RUN, explicit=[])
    assert taken.config["model"] == RUN["model"]  # the run's model, no key of the other left
    refused = reconcile(_command(model=other_model), RUN, explicit=["model"])
    assert [d.key for d in refused.conflicts] == ["model"]
    everything = reconcile(_command(seed=3), RUN, explicit=["experiment"])
    assert [d.key for d in everything.conflicts] == ["seed"]


def test_paths_inside_a_moved_run_dir_follow_it():
    moved = relocated(RUN, "/old/run", "/elsewhere/run")
    assert moved["callbacks"]["model_checkpoint"]["dirpath"] == "/elsewhere/run/checkpoints"
    assert relocated({"a": "/old/runner"}, "/old/run", "/x") == {"a": "/old/runner"}


# -- through vaelab-train ------------------------------------------------------------------
#: a finished 2-epoch digits run (2 steps per epoch), made once and copied for each test
TWO_EPOCHS = [*DIGITS, "trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def finished_run_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    train(compose_config(TWO_EPOCHS, root / "run"))
    return root / "run"


@pytest.fixture
def finished_run(finished_run_template, tmp_path) -> Path:
    run_dir = tmp_path / "finished"
    shutil.copytree(finished_run_template, run_dir)
    return run_dir


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def command(tmp_path: Path, *overrides: str):
    """What ``vaelab-train <overrides>`` composes: the command's own defaults (50 epochs, the
    whole digits set), in a fresh Hydra run dir."""
    from tests.conftest import FAST

    return compose_config([*FAST, "data=digits", "logger=csv", *overrides], tmp_path / "new")


def test_resuming_a_finished_run_with_its_checkpoint_leaves_every_file_byte_identical(
    finished_run, tmp_path, capsys
):
    """The issue's case: ``vaelab-train ckpt_path=<finished 2-epoch run>/checkpoints/last.ckpt``
    trained the folder on to the default 50 epochs and replaced its files."""
    before = file_hashes(finished_run)
    metrics = train(command(tmp_path, f"ckpt_path={finished_run}/checkpoints/last.ckpt"))
    assert file_hashes(finished_run) == before
    assert metrics == json.loads((finished_run / METRICS_FILE).read_text())
    out = capsys.readouterr().out
    assert "already finished" in out
    assert "resume=force" in out


@pytest.mark.slow
def test_extending_a_finished_run_must_be_asked_for(finished_run, tmp_path):
    before = file_hashes(finished_run)
    with pytest.raises(VaelabError, match=r"has finished \(trainer\.max_epochs: 2 in the run, 3"):
        train(command(tmp_path, f"ckpt_path={finished_run}", "trainer.max_epochs=3"))
    assert file_hashes(finished_run) == before


def test_another_config_for_a_run_dir_is_refused_with_the_difference_and_two_ways_forward(
    finished_run, tmp_path
):
    before = file_hashes(finished_run)
    with pytest.raises(VaelabError) as refusal:
        train(command(tmp_path, f"ckpt_path={finished_run}", "model.latent_dim=5"))
    message = str(refusal.value)
    assert "model.latent_dim: 2 in the run, 5 now" in message
    assert f"init_from={finished_run}/checkpoints/last.ckpt" in message
    assert "resume=force" in message
    # a group option that composes under another key (likelihood → model.likelihood)
    with pytest.raises(VaelabError, match=r"another config .*model\.likelihood"):
        train(command(tmp_path, f"ckpt_path={finished_run}", "likelihood=continuous_bernoulli"))
    assert file_hashes(finished_run) == before


@pytest.mark.slow
def test_a_run_stopped_early_resumes_with_its_own_config_from_its_run_dir(finished_run, tmp_path):
    """``ckpt_path=<run dir>`` (a folder, as vaelab-eval takes) of a run stopped after 2 of its
    3 epochs: it trains the 3rd epoch with the run's settings, not the command's defaults."""
    config = finished_run / CONFIG_FILE
    config.write_text(config.read_text().replace("max_epochs: 2", "max_epochs: 3"))
    (finished_run / METRICS_FILE).unlink()  # as if it had been killed during epoch 3
    train(command(tmp_path, f"ckpt_path={finished_run}"))
    last = torch.load(finished_run / CHECKPOINT_DIR / LAST_CHECKPOINT, weights_only=True)
    assert last["global_step"] == 6  # 3 epochs of 2 steps (the run's limit_train_batches=2)
    assert "test/elbo" in json.loads((finished_run / METRICS_FILE).read_text())
    assert not (tmp_path / "new" / CONFIG_FILE).exists()


def test_a_folder_that_is_not_a_run_is_named_with_what_it_lacks(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaelabError, match=r"is a folder with no checkpoint .*no config\.yaml"):
        train(command(tmp_path, f"ckpt_path={tmp_path / 'empty'}"))


def test_tensorboard_names_a_run_after_its_task_and_the_overrides_that_change_it(tmp_path):
    from tests.conftest import FAST

    cfg = compose_config(
        [
            *FAST,
            "data=digits",
            "model.latent_dim=20",
            f"paths.data_dir={tmp_path}",  # where the data is: not part of the name
            "resume=never",
            f"+model.stage1_checkpoint={tmp_path}/stage1/last.ckpt",
            "~callbacks.image_logger",
        ],
        tmp_path / "run",
    )
    assert cfg.logger.tensorboard.sub_dir == (
        "train,data=digits,model.latent_dim=20,model.stage1_checkpoint=last.ckpt,"
        "~callbacks.image_logger"
    )
    plain = compose_config(FAST, tmp_path / "plain")
    assert plain.logger.tensorboard.sub_dir == "train"


@pytest.mark.slow
def test_the_issues_command_replayed_through_vaelab_train_changes_nothing(finished_run, tmp_path):
    import subprocess
    import sys

    from tests.signal_at_step import signalled_run_env
    from vaelab.paths import PROJECT_ROOT

    before = file_hashes(finished_run)
    logs = tmp_path / "logs"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab.train",
            f"ckpt_path={finished_run}/checkpoints/last.ckpt",
            f"paths.log_dir={logs}",
        ],
        capture_output=True,
        text=True,
        env=signalled_run_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "already finished" in done.stdout
    assert file_hashes(finished_run) == before
    # the folder Hydra made for the command is gone: the run went on (here: ended) in its own
    assert not any((logs / "train" / "runs").iterdir())
