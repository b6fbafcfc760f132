"""Training objectives: Monte-Carlo estimators of a lower bound on log p(x)."""

from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.elbo import ELBO

__all__ = ["ELBO", "Objective", "ObjectiveOutput"]
