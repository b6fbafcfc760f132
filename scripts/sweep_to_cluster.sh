#!/bin/bash
# Send a sweep to SLURM from a login node: Hydra's submitit launcher submits one job array,
# one task per configuration, and waits for the results (keep this shell alive: run it in
# tmux/screen, or with nohup). Each job's run dir is logs/train/multiruns/<time>/<job number>.
#
#   scripts/sweep_to_cluster.sh gpu                 # grid: 3 latent sizes × 2 learning rates
#   scripts/sweep_to_cluster.sh gpu optuna          # 40 Optuna trials, 8 at a time
#
# Pre-empted or timed-out jobs requeue themselves (SIGUSR1 → vaelab checkpoint + requeue)
# and continue in their run dir; re-running it with the same hydra.sweep.dir=<dir> after a
# crash redoes only the jobs that have no metrics.json (resume=auto).
set -euo pipefail
cd "$(dirname "$0")/.."

PARTITION="${1:?usage: $0 PARTITION [grid|optuna] [extra Hydra overrides...]}"
MODE="${2:-grid}"
shift $(( $# >= 2 ? 2 : 1 ))

LAUNCHER=(hydra/launcher=slurm "hydra.launcher.partition=${PARTITION}"
          hydra.launcher.timeout_min=240 hydra.launcher.cpus_per_task=8 hydra.launcher.mem_gb=32
          trainer=gpu data.on_device=true)

case "${MODE}" in
  grid)
    exec .venv/bin/vaelab-train --multirun "${LAUNCHER[@]}" \
      model.latent_dim=2,10,20 optimizer.lr=1e-3,3e-4 "$@"
    ;;
  optuna)
    exec .venv/bin/vaelab-train hparams_search=optuna "${LAUNCHER[@]}" \
      hydra.sweeper.n_trials=40 hydra.sweeper.n_jobs=8 \
      "hydra.sweeper.storage=sqlite:///$(pwd)/logs/optuna.db" "$@"
    ;;
  *)
    echo "unknown mode ${MODE}: use grid or optuna" >&2
    exit 2
    ;;
esac
