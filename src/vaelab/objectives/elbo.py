"""The evidence lower bound with L reparameterised samples (Kingma & Welling 2014, eq. 7/10)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, kl_divergence
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import (
    LatentVariableModel,
    MissingCapability,
    with_stopped_parameters,
)
from vaelab.objectives.base import Objective, ObjectiveOutput, sample_mean
from vaelab.objectives.gradients import (
    GradientEstimator,
    check_gradient_estimator,
    check_stopped_posterior,
)
from vaelab.schedules.base import Weighting
from vaelab.schema import Range

KLEstimator = Literal["auto", "analytic", "monte_carlo"]
KL_ESTIMATORS = ("auto", "analytic", "monte_carlo")


def has_analytic_kl(posterior: Distribution, prior: Distribution) -> bool:
    """Whether torch.distributions has a closed form for KL(posterior || prior)."""
    try:
        kl_divergence(posterior, prior)
    except NotImplementedError:
        return False
    return True


def per_dimension_parts(posterior: Distribution, prior: Distribution) -> bool:
    """Both factorise over the latent dimensions, so the KL splits into per-dimension terms."""
    return all(
        isinstance(d, Independent) and d.reinterpreted_batch_ndims == 1 for d in (posterior, prior)
    )


@torch.no_grad()
def probe_posterior_and_prior(model: LatentVariableModel) -> tuple[Distribution, Distribution]:
    """q(z|x) of two blank inputs and p(z), to see which KL estimators apply."""
    x = torch.zeros(2, *model.input_shape, device=model.device)
    # a class-conditional model's q(z|x, y) needs labels: class 0 stands for any
    y = torch.zeros(2, dtype=torch.long, device=model.device) if model.num_classes else None
    return model.encode(x, y), model.prior.distribution()


class ELBO(Objective):
    """ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) || p(z)); loss = recon + penalty(KL), i.e. −ELBO
    at β = 1 and the β-VAE (Higgins et al. 2017) otherwise.

    ``kl="analytic"`` uses the closed-form KL (SGVB-B, eq. 10; Pyro's TraceMeanField_ELBO);
    ``kl="monte_carlo"`` estimates it as log q(z|x) − log p(z) on the same samples (SGVB-A,
    eq. 7; Pyro's Trace_ELBO); ``kl="auto"`` (default) takes the closed form when
    torch.distributions registers one for the model's posterior and prior, else Monte Carlo,
    and says which. A model without one q(z|x) and p(z) pair (a hierarchy of stochastic
    layers) gets Monte Carlo from ``kl="auto"``, with the reason in ``kl_estimator_reason``:
    log q(z|x) − log p(z) of its ``sample_latents``, summed over the layers;
    ``kl="analytic"`` is refused for it. The L samples are drawn in one batched forward of
    shape [L, B, D].

    ``gradient=stl`` (sticking the landing, Roeder et al. 2017): log q(z|x) in the Monte-Carlo
    KL is evaluated with q's parameters stopped, so the encoder's gradient is the path
    derivative only (the score term, zero in expectation, is dropped; exactly zero gradient
    at the exact posterior). It needs the Monte-Carlo KL (``kl=auto`` resolves to it).
    ``gradient=dreg`` is refused: for the ELBO it is STL.
    """

    bound_name = "elbo"
    term_names = ("recon", "kl")

    def __init__(
        self,
        kl: KLEstimator = "auto",
        num_samples: Annotated[int, Range(ge=1)] = 1,
        gradient: GradientEstimator = "reparam",
    ) -> None:
        super().__init__()
        if kl not in KL_ESTIMATORS:
            raise VaelabError(f"objective.kl must be one of {', '.join(KL_ESTIMATORS)}, got {kl!r}")
        if int(num_samples) < 1:
            raise VaelabError(f"objective.num_samples must be >= 1, got {num_samples}")
        self.gradient = check_gradient_estimator(gradient)
        if self.gradient == "dreg":
            raise VaelabError(
                "objective=elbo objective.gradient=dreg: the doubly reparameterised gradient of "
                "the ELBO is sticking the landing; use objective.gradient=stl"
            )
        if self.gradient == "stl" and kl == "analytic":
            raise VaelabError(
                "objective.gradient=stl drops the score term of a Monte-Carlo KL; the "
                "closed-form KL has none: use objective.kl=monte_carlo (or auto)"
            )
        self.kl = kl
        self.num_samples = int(num_samples)
        self.kl_estimator: str = (
            "monte_carlo" if self.gradient == "stl" else ("analytic" if kl == "auto" else kl)
        )
        #: why Monte Carlo was chosen for a model without a single prior (None otherwise)
        self.kl_estimator_reason: str | None = None
        #: False for models with no single p(z) (hierarchies): the KL is log q − log p only
        self.single_prior = True

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        self.single_prior, self.kl_estimator_reason = True, None
        try:
            posterior, prior = probe_posterior_and_prior(model)
        except MissingCapability as missing:
            if self.kl == "analytic":
                raise VaelabError(
                    f"objective.kl=analytic needs one posterior q(z|x) and one prior p(z), but "
                    f"{missing}; use objective.kl=auto or objective.kl=monte_carlo (log q − "
                    "log p of every layer, summed)"
                ) from missing
            self.single_prior = False
            self.kl_estimator = "monte_carlo"
            self.kl_estimator_reason = f"{missing}: the KL has no closed form"
            if self.gradient == "stl":
                check_stopped_posterior(model, "objective=elbo with stl")
            return
        analytic = has_analytic_kl(posterior, prior)
        if self.kl == "analytic" and not analytic:
            raise VaelabError(
                f"objective.kl=analytic: torch.distributions has no closed-form KL between "
                f"the posterior ({type(posterior).__name__}) and the prior "
                f"({type(prior).__name__}); use objective.kl=auto or objective.kl=monte_carlo"
            )
        if self.kl == "auto" and self.gradient == "reparam":
            self.kl_estimator = "analytic" if analytic else "monte_carlo"
        if self.gradient == "stl":
            check_stopped_posterior(model, "objective=elbo with stl")

    def resolved_choices(self) -> dict[str, Any]:
        choices: dict[str, Any] = {"kl_estimator": self.kl_estimator}
        if self.kl_estimator_reason is not None:
            choices["kl_estimator_reason"] = self.kl_estimator_reason
        return choices | ({"gradient": self.gradient} if self.gradient != "reparam" else {})

    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
    ) -> ObjectiveOutput:
        # one sample: z is [B, D] and no average over a sample axis is needed
        sample_axis = self.num_samples > 1
        num_samples = self.num_samples if sample_axis else None
        if not self.single_prior:  # several layers: log q − log p summed over them
            samples = model.sample_latents(x, y, num_samples)
            recon = -sample_mean(samples.log_likelihood, sample_axis)
            kl = sample_mean(samples.log_posterior - samples.log_prior, sample_axis)
            return ObjectiveOutput(
                loss=recon + weighting.penalty(kl, None, step),
                bound=-(recon + kl),
                terms={"recon": recon, "kl": kl},
            )
        prior = model.prior.distribution()
        if self.kl_estimator == "analytic":
            posterior = model.encode(x, y)
            z = posterior.rsample((num_samples,) if sample_axis else ())
            log_likelihood = model.decode(z, y).log_prob(x)
            if per_dimension_parts(posterior, prior):
                kl_per_dim = model.prior.kl_per_dimension(posterior.base_dist)
            else:
                kl_per_dim, kl = None, kl_divergence(posterior, prior)
        else:
            samples = model.sample_latents(x, y, num_samples)
            posterior, z, log_likelihood = samples.posterior, samples.z, samples.log_likelihood
            stl = self.gradient == "stl" and torch.is_grad_enabled()
            if per_dimension_parts(posterior, prior):
                scored = with_stopped_parameters(posterior) if stl else posterior
                kl_per_dim = sample_mean(
                    scored.base_dist.log_prob(z) - prior.base_dist.log_prob(z), sample_axis
                )
            else:
                kl_per_dim = None
                log_posterior = (
                    model.log_posterior_stopped(samples, x, y) if stl else samples.log_posterior
                )
                kl = sample_mean(log_posterior - samples.log_prior, sample_axis)
        if kl_per_dim is not None:  # per-dimension terms; their sum is the KL
            kl = kl_per_dim.sum(-1)
        recon = -sample_mean(log_likelihood, sample_axis)
        # at β ≡ 1 the loss is −ELBO itself: no multiplication by 1 (a kernel and a backward
        # node each step)
        penalty = kl if weighting.is_identity else weighting.penalty(kl, kl_per_dim, step)
        return ObjectiveOutput(
            loss=recon + penalty,
            bound=-(recon + kl),
            terms={"recon": recon, "kl": kl},
            per_dimension={"kl": kl_per_dim} if kl_per_dim is not None else {},
        )
