"""vaelab.callbacks.hparams_logger, the HPARAMS tab of a sweep, read back with TensorBoard's own
reader: every run declares the swept parameter, and no run's experiment summary hides the other
runs' parameters."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata

from tests.conftest import FAST, compose_config
from vaelab.train import train

BETAS = (0.5, 1.0, 4.0)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Three digits runs that differ in beta.value, like the jobs of a sweep."""
    root = tmp_path_factory.mktemp("hparams_sweep")
    for job, beta in enumerate(BETAS):
        cfg = compose_config(
            [
                *FAST,
                "data=digits",
                f"beta.value={beta}",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=3",
                "trainer.limit_val_batches=1",
                "test=false",
                "callbacks.image_logger=null",
                "callbacks.encoding_snapshot=null",
            ],
            root / str(job),
        )
        train(cfg)
    return root


def _plugin_data(sweep_dir) -> dict[str, dict[str, bytes]]:
    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep_dir))
    runs.Reload()
    return runs.PluginRunToTagToContent(metadata.PLUGIN_NAME)


def test_every_run_declares_the_swept_parameter(sweep_dir):
    plugin_data = _plugin_data(sweep_dir)
    # runs are named after their job folders and then the task and the overrides that make the
    # run what it is (docs/reliability.md), without a "/tensorboard" suffix
    assert sorted(run.split("/")[0] for run in plugin_data) == [str(j) for j in range(len(BETAS))]
    for job, beta in enumerate(BETAS):
        (name,) = [run for run in plugin_data if run.startswith(f"{job}/")]
        assert name.startswith(f"{job}/train,")
        assert f"beta.value={beta}" in name
    seen = {}
    for run, tags in plugin_data.items():
        start = metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
        seen[run] = start.hparams["beta.value"].number_value
        assert start.hparams["data"].string_value == "digits"
        assert metadata.SESSION_END_INFO_TAG in tags  # the run finished
    assert sorted(seen.values()) == sorted(BETAS)


def test_no_run_writes_an_experiment_summary(sweep_dir):
    # TensorBoard would take one arbitrary run's summary for all runs under --logdir
    for tags in _plugin_data(sweep_dir).values():
        assert metadata.EXPERIMENT_TAG not in tags
