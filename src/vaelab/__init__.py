"""vaelab: a PyTorch Lightning + Hydra experiment framework for variational autoencoders."""

__version__ = "0.1.0"
