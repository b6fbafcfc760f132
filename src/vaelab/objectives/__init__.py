"""Training objectives: Monte-Carlo estimators of a lower bound on log p(x)."""

from vaelab.objectives.base import AdversaryStep, Objective, ObjectiveOutput
from vaelab.objectives.ciwae import CIWAE
from vaelab.objectives.elbo import ELBO
from vaelab.objectives.iwae import IWAE
from vaelab.objectives.miwae import MIWAE
from vaelab.objectives.piwae import PIWAE

__all__ = [
    "CIWAE",
    "ELBO",
    "IWAE",
    "MIWAE",
    "PIWAE",
    "AdversaryStep",
    "Objective",
    "ObjectiveOutput",
]
