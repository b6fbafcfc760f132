"""The sweep launchers (conf/hydra/launcher, hydra_plugins.vaelab_slurm_launcher): sweeps off the
main process with submitit's local launcher and Optuna, and the SLURM job script."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from vaelab.paths import CONFIG_DIR, PROJECT_ROOT
from vaelab.train import METRICS_FILE, RESOLVED_CONFIG_FILE

VAELAB_TRAIN = Path(sys.executable).parent / "vaelab-train"
TINY_RUN = [
    "print_config=false",
    "data.download=false",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=1",
    "test=false",
    "callbacks=none",
    "logger=csv",
    "trainer.accelerator=cpu",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
]


def _sweep(sweep_dir: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [
            str(VAELAB_TRAIN),
            *args,
            *TINY_RUN,
            f"paths.data_dir={data_dir}",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _job_metrics(sweep_dir: Path) -> dict[str, dict[str, float]]:
    return {
        job.name: json.loads((job / METRICS_FILE).read_text())
        for job in sorted(sweep_dir.iterdir())
        if (job / METRICS_FILE).is_file()
    }


@pytest.mark.slow
def test_local_submitit_launcher_runs_each_job_in_its_own_process(mnist_data_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    _sweep(sweep_dir, mnist_data_dir, "--multirun", "hydra/launcher=local", "model.latent_dim=2,3")
    metrics = _job_metrics(sweep_dir)
    assert sorted(metrics) == ["0", "1"]
    for job, latent_dim in (("0", 2), ("1", 3)):
        assert math.isfinite(metrics[job]["val/elbo"])
        assert metrics[job]["val/elbo"] < 0
        saved = yaml.safe_load((sweep_dir / job / RESOLVED_CONFIG_FILE).read_text())
        assert saved["model"]["latent_dim"] == latent_dim
    # submitit ran them: its per-job folders hold the pickled job and its result
    results = list((sweep_dir / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == 2


@pytest.mark.slow
def test_optuna_sweep_reports_the_best_trial(mnist_data_dir, tmp_path):
    sweep_dir = tmp_path / "optuna"
    _sweep(
        sweep_dir,
        mnist_data_dir,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2",
    )
    trials = _job_metrics(sweep_dir)
    assert len(trials) == 3
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    values = [m["val/elbo"] for m in trials.values()]
    assert results["best_value"] == pytest.approx(max(values))  # maximised, not minimised
    assert set(results["best_params"]) == {"optimizer.lr", "beta.value", "model.latent_dim"}
    assert 1e-4 <= results["best_params"]["optimizer.lr"] <= 3e-3
    assert results["best_params"]["model.latent_dim"] in (2, 5, 10, 20, 50)


def _slurm_script(tmp_path: Path, monkeypatch, *overrides: str) -> str:
    """The sbatch file hydra-submitit-launcher would submit for a 2-job sweep, captured just
    before ``sbatch`` runs (no cluster needed: a stand-in ``srun`` satisfies submitit)."""
    import submitit.slurm.slurm as submitit_slurm

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for program in ("srun", "sinfo"):  # a failing sinfo: no cluster to check the request on
        (fake_bin / program).write_text("#!/bin/sh\nexit 1\n")
        (fake_bin / program).chmod(0o755)
    # a controller that answers (the launcher asks first)
    (fake_bin / "scontrol").write_text("#!/bin/sh\necho 'Slurmctld(primary) at head is UP'\n")
    (fake_bin / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")

    class Submitted(Exception):
        pass

    scripts: list[str] = []

    def capture(executor, command: str):
        scripts.append(executor._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "_submit_command", capture)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    with pytest.raises(Submitted):
        launcher.launch([["model.latent_dim=2"], ["model.latent_dim=10"]], initial_job_idx=0)
    return scripts[0]


def test_slurm_launcher_builds_a_multinode_ddp_job_array(tmp_path, monkeypatch):
    script = _slurm_script(
        tmp_path,
        monkeypatch,
        "trainer=ddp_multinode",
        "trainer.devices=4",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.account=vae_lab",
        "hydra.launcher.timeout_min=90",
    )
    lines = set(script.splitlines())
    assert {
        "#SBATCH --partition=gpu",
        "#SBATCH --account=vae_lab",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --time=90",
        "#SBATCH --array=0-1%2",
    } <= lines
    # pre-emption: SIGUSR1 two minutes ahead for Lightning's checkpoint + requeue
    assert "#SBATCH --signal=USR1@120" in lines
    assert "#SBATCH --requeue" in lines
    assert not any(line.startswith("#SBATCH --signal=USR2") for line in lines)
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in lines)


def test_slurm_tasks_per_node_follow_the_trainer_devices(tmp_path, monkeypatch):
    script = _slurm_script(
        tmp_path, monkeypatch, "trainer=gpu", "hydra.launcher.signal_delay_s=300"
    )
    lines = set(script.splitlines())
    assert {
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --signal=USR1@300",
    } <= lines
    assert not any(line.startswith("#SBATCH --partition") for line in lines)


def test_slurm_asks_no_gpus_for_a_cpu_trainer(tmp_path, monkeypatch):
    script = _slurm_script(tmp_path, monkeypatch, "trainer=cpu", "hydra.launcher.cpus_per_task=1")
    lines = script.splitlines()
    assert not any(line.startswith("#SBATCH --gpus-per-node") for line in lines)
    assert "#SBATCH --ntasks-per-node=1" in lines
    assert "#SBATCH --cpus-per-task=1" in lines
    assert "#SBATCH --job-name=train" in lines  # the task name, as squeue shows it
