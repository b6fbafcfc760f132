"""Training objectives: Monte-Carlo estimators of a lower bound on log p(x)."""

from vaelab.objectives.base import AdversaryStep, Objective, ObjectiveOutput
from vaelab.objectives.elbo import ELBO
from vaelab.objectives.iwae import IWAE

__all__ = ["ELBO", "IWAE", "AdversaryStep", "Objective", "ObjectiveOutput"]
