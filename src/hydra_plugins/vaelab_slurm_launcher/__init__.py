"""vaelab's SLURM launcher, found by Hydra's plugin discovery (``hydra/launcher=slurm``)."""
