"""``hydra/launcher=slurm``: submitit's SLURM launcher (one job array per sweep) that asks for
what the trainer uses and turns a request the cluster cannot satisfy into one
``vaelab: error:`` line naming the hydra.launcher key to change."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig


class VaelabSlurmLauncher(SlurmLauncher):
    """``gpus_per_node: null`` follows the trainer (none for CPU trainers, else one GPU per
    device). Before submission the request is checked against ``sinfo``; a refusal by
    ``sbatch`` itself also ends in one ``vaelab: error:`` line."""

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from vaelab.cli import run_reporting_errors
        from vaelab.cluster.slurm_request import gpus_per_node_for

        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if self.params.get("gpus_per_node") is None:
            self.params["gpus_per_node"] = run_reporting_errors(
                lambda: gpus_per_node_for(config.trainer)
            )

    def __call__(self, *args, **kwargs) -> JobReturn:
        """Run one job on its node; a SIGUSR1 during start-up is kept for the checkpoint."""
        from vaelab.callbacks.preemption import hold_early_signal

        hold_early_signal()
        return super().__call__(*args, **kwargs)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from vaelab.cli import run_reporting_errors

        return run_reporting_errors(lambda: self._checked_launch(job_overrides, initial_job_idx))

    def _checked_launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from submitit.core.utils import FailedJobError

        from vaelab.cluster.slurm_request import (
            NO_SLURM,
            check_controller,
            check_request,
            cluster_partitions,
            explain_refusal,
        )

        check_controller()  # before anything else: a missing cluster is said as such
        partitions = cluster_partitions()
        if partitions is not None:
            check_request(self.params, partitions)
        try:
            return super().launch(job_overrides, initial_job_idx)
        except FailedJobError as err:
            explained = explain_refusal(str(err))
            if explained is None:  # a job's own failure, not the submission's
                raise
            raise explained from err
        except RuntimeError as err:
            if 'Could not detect "srun"' in str(err):
                raise NO_SLURM from err
            raise
