"""Priors p(z): the ``prior=`` config group (one file per prior)."""
