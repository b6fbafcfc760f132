"""The names of the files vaelab writes into a run or sweep directory, in one place.

A run directory (``paths.output_dir``) holds::

    config.yaml            the resolved config (written when the run starts from scratch)
    metrics.json           the final metrics (written when the run finished)
    error.txt              the error that stopped the run (message, then traceback)
    .vaelab.lock           held (flock) by the process training into this directory
    checkpoints/*.ckpt     ModelCheckpoint's files; checkpoints/last.ckpt the newest
    eval/metrics.json      vaelab-eval's results
    .hydra/config.yaml     Hydra's copy of the unresolved config, .hydra/overrides.yaml the
                           command-line overrides of this job

A multirun directory holds one such directory per job, ``multirun.yaml`` (Hydra) and the
report (``report.md``, ``report.png``) that ``vaelab-report`` writes.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
ERROR_FILE = "error.txt"
LOCK_FILE = ".vaelab.lock"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
CHECKPOINT_SUFFIX = ".ckpt"
#: what Lightning's SLURM handler writes into the run dir before a requeue
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"
#: a checkpoint found unreadable at start is kept under this suffix, out of the way
TORN_SUFFIX = ".torn"
EVAL_DIR = "eval"
EVAL_METRICS = Path(EVAL_DIR) / METRICS_FILE
HYDRA_DIR = ".hydra"
HYDRA_CONFIG = Path(HYDRA_DIR) / "config.yaml"
OVERRIDES_FILE = Path(HYDRA_DIR) / "overrides.yaml"
MULTIRUN_FILE = "multirun.yaml"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
