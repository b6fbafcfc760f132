"""Running vaelab on SLURM: the launcher and a throw-away local cluster."""
