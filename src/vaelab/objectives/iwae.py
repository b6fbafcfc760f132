"""The importance-weighted bound of Burda, Grosse & Salakhutdinov (2015), eq. 8."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import KLWeighting
from vaelab.schedules.constant import ConstantBeta
from vaelab.vae import VAE


class IWAE(Objective):
    """L_k(x) = E[log (1/k) Σ_i w_i], w_i = p(x, z_i)/q(z_i|x), z_1..z_k ~ q(z|x) i.i.d.

    The k samples are drawn reparameterised in one batched forward of shape [k, B, D];
    ``bound`` is the log-mean-exp above (L_1 = ELBO ≤ L_k ≤ L_{k+1} ≤ log p(x), Burda et
    al. Thm 1) and the loss is −bound, so gradients are the pathwise (reparameterised)
    gradients Σ_i w̃_i ∇ log w_i with normalised weights w̃ (eq. 14). ``recon`` and ``kl``
    are reported as the single-sample ELBO's terms averaged over the same k samples
    (−mean log p(x|z_i) and mean log q(z_i|x) − log p(z_i)).

    β weighting does not apply to this bound: any ``beta`` other than constant β = 1
    raises a :class:`~vaelab.errors.VaelabError` at the first loss evaluation.
    """

    def __init__(self, num_samples: int = 5) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"objective.num_samples must be >= 1, got {num_samples}")
        self.num_samples = int(num_samples)

    def __call__(self, vae: VAE, x: Tensor) -> ObjectiveOutput:
        q = vae.encode(x)
        prior = vae.prior(x.device)
        z = q.rsample((self.num_samples,))  # [k, B, D]
        log_likelihood = vae.likelihood.log_prob(vae.decode(z), x)  # [k, B]
        log_ratio = q.log_prob(z) - prior.log_prob(z)  # log q(z|x) − log p(z), [k, B]
        log_weights = log_likelihood - log_ratio
        bound = torch.logsumexp(log_weights, dim=0) - math.log(self.num_samples)
        kl_per_dim = (
            (q.base_dist.log_prob(z) - prior.base_dist.log_prob(z)).mean(0)
            if vae.posterior.factorizes
            else None
        )
        return ObjectiveOutput(
            recon=-log_likelihood.mean(0), kl=log_ratio.mean(0), bound=bound, kl_per_dim=kl_per_dim
        )

    def loss(self, out: ObjectiveOutput, weighting: KLWeighting, step: int) -> Tensor:
        """−L_k per data point; only the plain bound (β = 1) is defined."""
        if not (isinstance(weighting, ConstantBeta) and weighting.value == 1.0):
            raise VaelabError(
                "objective=iwae optimises the importance-weighted bound, which "
                "has no KL term to weight; use beta=constant beta.value=1.0 "
                "(or objective=elbo for β-VAEs and KL schedules)"
            )
        return -out.bound
