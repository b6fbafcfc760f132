"""Evaluation of trained runs: checkpoints, importance-weighted NLL, active units, sweeps."""
