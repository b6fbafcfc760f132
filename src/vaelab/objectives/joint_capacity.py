"""JointVAE's objective (Dupont 2018, "Learning Disentangled Joint Continuous and Discrete
Representations", NeurIPS, eq. 7): the ELBO's reconstruction with one controlled capacity per
kind of latent,

    loss = recon + γ·|KL(q(z|x) || p(z)) − C_z| + γ·|KL(q(c|x) || p(c)) − C_c|,

C_z and C_c rising linearly from 0 to their maxima over their numbers of steps (as Burgess et
al. 2018's single capacity, ``beta=capacity``). C_c is held at most at the discrete channel's
capacity, the entropy of p(c) (Σ log K for uniform categories, Dupont 2018, §3).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import kl_divergence
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.evidence import EvidenceTerms, KLEstimator, LatentProbe
from vaelab.objectives.regularised import (
    Regularised,
    RegularisedELBO,
    batch_constant,
    distribution_name,
)
from vaelab.posteriors.structure import latent_blocks
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, PositiveInt, checked_arguments

#: the blocks of a JointVAE code that eq. 7 weights, each with its own capacity
BLOCKS = ("continuous", "discrete")


def linear_capacity(maximum: float, steps: int, step: int) -> float:
    """C(step) = maximum · min(1, step/steps), in nats."""
    return maximum * min(1.0, step / steps)


@checked_arguments("objective")
class JointCapacity(RegularisedELBO):
    """Dupont (2018), eq. 7 (module doc). The blocks' KLs are in closed form, batch-averaged
    inside |·| as in the paper's implementation (every data point carries the same penalty).
    A code without a Gaussian block (``model=gumbel_vae``) has the discrete capacity only.
    ``<stage>/elbo`` stays the ELBO; ``kl_continuous``, ``kl_discrete`` and the capacities
    ``capacity_continuous``, ``capacity_discrete`` are logged in nats. γ replaces β: only
    ``beta=constant beta.value=1.0`` is accepted."""

    term_names = (
        "recon",
        "kl",
        "kl_continuous",
        "kl_discrete",
        "capacity_continuous",
        "capacity_discrete",
    )
    option_name = "joint_capacity"

    def __init__(
        self,
        gamma: NonNegativeFloat = 30.0,
        capacity_continuous_max: NonNegativeFloat = 5.0,
        capacity_continuous_steps: PositiveInt = 25000,
        capacity_discrete_max: NonNegativeFloat = 5.0,
        capacity_discrete_steps: PositiveInt = 25000,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.gamma = float(gamma)
        self.schedules = {
            "continuous": (float(capacity_continuous_max), int(capacity_continuous_steps)),
            "discrete": (float(capacity_discrete_max), int(capacity_discrete_steps)),
        }

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        blocks = latent_blocks(probe.posterior)
        if blocks is None or "discrete" not in blocks or latent_blocks(probe.prior) is None:
            raise VaelabError(
                f"{self.option} weights the KLs of a code's continuous and discrete blocks; "
                f"the posterior ({distribution_name(probe.posterior)}) has none: use "
                "model=joint_vae or model=gumbel_vae"
            )

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        self.refuse_weighting(weighting, "γ and the two capacities weight the KLs, β does not")

    def capacities(self, step: int, discrete_limit: float) -> dict[str, float]:
        """C_z and C_c at ``step``; C_c held at most at ``discrete_limit`` nats."""
        capacity = {name: linear_capacity(*self.schedules[name], step) for name in BLOCKS}
        capacity["discrete"] = min(capacity["discrete"], discrete_limit)
        return capacity

    @override
    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        posterior = latent_blocks(evidence.samples.posterior)
        prior = latent_blocks(model.prior.distribution_given(None))
        batch = evidence.recon.shape[0]
        limit = float(prior["discrete"].entropy().max())
        capacity = self.capacities(step, limit)
        loss = evidence.recon
        terms: dict[str, Tensor] = {}
        for name in BLOCKS:
            if name in posterior:
                kl = kl_divergence(posterior[name], prior[name])
                loss = loss + self.gamma * (kl.mean() - capacity[name]).abs()
            else:
                kl = torch.zeros_like(evidence.recon)
            terms[f"kl_{name}"] = kl
            terms[f"capacity_{name}"] = batch_constant(
                evidence.recon.new_tensor(capacity[name]), batch
            )
        return Regularised(loss=loss, terms=terms)
