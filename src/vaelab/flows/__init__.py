"""Normalising flows: invertible maps f with a tractable log |det ∂f/∂z| as
``torch.distributions.Transform`` subclasses, the networks inside them and the distribution of
a base density pushed through them; shared by the flow posteriors and the flow prior.

With all its parameters zero every transform here is the identity (the networks' output layers
start at zero, so a fresh IAF or coupling flow is the identity too).
"""

from vaelab.flows.coupling import (
    AffineCouplingStack,
    AffineCouplingTransform,
    CouplingNetwork,
    alternating_masks,
)
from vaelab.flows.distribution import FlowDistribution
from vaelab.flows.iaf import InverseAutoregressiveTransform
from vaelab.flows.made import MADE, MaskedLinear
from vaelab.flows.planar import PlanarTransform
from vaelab.flows.radial import RadialTransform

__all__ = [
    "MADE",
    "AffineCouplingStack",
    "AffineCouplingTransform",
    "CouplingNetwork",
    "FlowDistribution",
    "InverseAutoregressiveTransform",
    "MaskedLinear",
    "PlanarTransform",
    "RadialTransform",
    "alternating_masks",
]
