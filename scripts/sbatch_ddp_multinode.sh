#!/bin/bash
# Multi-node DDP training without Hydra's launcher: SLURM starts one task per GPU and
# Lightning's SLURMEnvironment reads ranks, world size and the master address from SLURM.
#
#   sbatch scripts/sbatch_ddp_multinode.sh                       # the default experiment
#   sbatch --nodes=4 scripts/sbatch_ddp_multinode.sh data.batch_size=256 model.latent_dim=20
#
# On CPUs (e.g. the local cluster of docs/cluster.md): 2 tasks on one node, DDP over gloo
#   sbatch --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 --mem=2G \
#     scripts/sbatch_ddp_multinode.sh trainer.accelerator=cpu trainer.sync_batchnorm=false
#
# Environment: VAELAB_PYTHON (default .venv/bin/python) runs vaelab; VAELAB_RUN_DIR (default
# logs/train/runs/slurm_<job id>) is the run dir every task writes to.
#
# data.batch_size is per GPU: the global batch is data.batch_size × GPUs per node × nodes.
# Pre-emption / time limit: SLURM sends SIGUSR1 120 s before the kill; Lightning saves a
# checkpoint and requeues the job, which restarts in the same run dir (named after the job id)
# and continues from it (resume=auto).
#SBATCH --job-name=vaelab-ddp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=04:00:00
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
# logs/ is in the repository: SLURM opens this file before the script runs
#SBATCH --output=logs/slurm_%x_%j.out
# site-specific: uncomment and fill in
##SBATCH --partition=gpu
##SBATCH --account=my_account
##SBATCH --qos=normal

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"

# every task must write to the same run dir: fix it by job id instead of Hydra's timestamp
RUN_DIR="${VAELAB_RUN_DIR:-logs/train/runs/slurm_${SLURM_JOB_ID}}"

srun --kill-on-bad-exit=1 "${VAELAB_PYTHON:-.venv/bin/python}" -m vaelab.train \
  trainer=ddp_multinode \
  trainer.num_nodes="${SLURM_JOB_NUM_NODES}" \
  trainer.devices="${SLURM_NTASKS_PER_NODE}" \
  data.num_workers="$(( ${SLURM_CPUS_PER_TASK:-1} > 1 ? ${SLURM_CPUS_PER_TASK:-1} - 1 : 0 ))" \
  hydra.run.dir="${RUN_DIR}" \
  "$@"
