"""Latent-variable models: the ``model=`` config group targets one of these classes."""
