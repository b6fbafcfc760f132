"""The evidence lower bound with L reparameterised samples (Kingma & Welling 2014, eq. 7/10)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor
from torch.distributions import kl_divergence

from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.vae import VAE


class ELBO(Objective):
    """ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) || p(z)).

    ``kl="analytic"`` uses the closed-form KL (SGVB-B, eq. 10; Pyro's TraceMeanField_ELBO);
    ``kl="monte_carlo"`` estimates it as log q(z|x) − log p(z) on the same samples
    (SGVB-A, eq. 7; Pyro's Trace_ELBO). The L samples are drawn in one batched forward
    of shape [L, B, D].
    """

    def __init__(self, kl: Literal["analytic", "monte_carlo"] = "analytic", num_samples: int = 1):
        if kl not in ("analytic", "monte_carlo"):
            raise ValueError(f"objective.kl must be 'analytic' or 'monte_carlo', got {kl!r}")
        if int(num_samples) < 1:
            raise ValueError(f"objective.num_samples must be >= 1, got {num_samples}")
        self.kl = kl
        self.num_samples = int(num_samples)

    def __call__(self, vae: VAE, x: Tensor) -> ObjectiveOutput:
        q = vae.encode(x)
        # one sample: z is [B, D] and no average over a sample axis is needed
        sample_shape = () if self.num_samples == 1 else (self.num_samples,)
        z = q.rsample(sample_shape)  # [L, B, D] or [B, D]
        prior = vae.prior(z.device)

        def sample_mean(per_sample: Tensor) -> Tensor:
            return per_sample.mean(0) if sample_shape else per_sample

        recon = -sample_mean(vae.likelihood.log_prob(vae.decode(z), x))
        if vae.posterior.factorizes:  # per-dimension terms; their sum is the KL
            if self.kl == "analytic":
                kl_per_dim = kl_divergence(q.base_dist, prior.base_dist)
            else:
                kl_per_dim = sample_mean(q.base_dist.log_prob(z) - prior.base_dist.log_prob(z))
            kl = kl_per_dim.sum(-1)
        else:
            kl_per_dim = None
            kl = (
                kl_divergence(q, prior)
                if self.kl == "analytic"
                else sample_mean(q.log_prob(z) - prior.log_prob(z))
            )
        return ObjectiveOutput(recon=recon, kl=kl, bound=-(recon + kl), kl_per_dim=kl_per_dim)
