"""The one ELBO engine: reconstruction and KL of L samples z ~ q(z|x), from the model's
``sample_latents`` (Kingma & Welling 2014, eq. 7 and eq. 10).

ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) || p(z)). The ELBO objective, every objective that adds
a regulariser to it (β-TCVAE, DIP-VAE, InfoVAE, FactorVAE, WAE with a stochastic encoder) and,
through the same samples' log weights, the IWAE family and the IW-NLL all draw their samples
from :meth:`~vaelab.models.interface.LatentVariableModel.sample_latents`.

The KL is ``analytic`` (closed form, where torch.distributions registers one for the model's
q and p: SGVB-B, eq. 10) or ``monte_carlo`` (log q(z|x) − log p(z) of the same samples:
SGVB-A, eq. 7); ``auto`` takes the closed form where there is one and says which. A model
whose latent is several stochastic layers (its :attr:`latent_structure` says so) has no
single q and p: its KL is log q − log p summed over the layers, Monte Carlo only. Where q
and p both factorise over the latent dimensions (:mod:`vaelab.posteriors.structure`), the KL
is also returned per dimension.

``gradient=stl`` (sticking the landing, Roeder, Wu & Duvenaud 2017): log q(z|x) in the
Monte-Carlo KL is scored with q's parameters stopped, so the encoder's gradient is the path
derivative alone (the score term, zero in expectation, is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torch.distributions import Distribution, kl_divergence

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentSamples, LatentVariableModel, with_stopped_parameters
from vaelab.objectives.gradients import GradientEstimator, check_stopped_posterior
from vaelab.posteriors.structure import factorised_marginals, rejection_score
from vaelab.schema import PositiveInt, checked_arguments

KLEstimator = Literal["auto", "analytic", "monte_carlo"]


def has_analytic_kl(posterior: Distribution, prior: Distribution) -> bool:
    """Whether torch.distributions has a closed form for KL(posterior || prior)."""
    try:
        kl_divergence(posterior, prior)
    except NotImplementedError:
        return False
    return True


@dataclass
class LatentProbe:
    """q(z|x) of two blank inputs and p(z) of a model with one flat latent: what the
    objectives inspect at set-up to see which estimators and regularisers apply."""

    posterior: Distribution
    prior: Distribution


@torch.no_grad()
def probe_latent(model: LatentVariableModel) -> LatentProbe:
    """Encode two blank inputs (with labels the model would sample with, if it reads any)."""
    x = torch.zeros(2, *model.input_shape, device=model.device)
    # labels drawn by a fixed generator: the probe must not move the global RNG
    y = model.labels_for_samples(2, torch.Generator(model.device).manual_seed(0))
    was_training = model.training
    model.eval()  # batch-norm statistics do not see the probe
    try:
        posterior = model.encode(x, y)
    finally:
        model.train(was_training)
    return LatentProbe(posterior=posterior, prior=model.prior.distribution_given(y))


def sample_mean(per_sample: Tensor, has_sample_axis: bool) -> Tensor:
    """Average over a leading sample axis [L, B] → [B] (a single draw has none)."""
    return per_sample.mean(0) if has_sample_axis else per_sample


@dataclass
class EvidenceTerms:
    """The ELBO's parts for a batch of B, in nats per data point, averaged over L samples:
    ``recon`` = −E_q log p(x|z), ``kl`` = KL(q(z|x) || p(z)) (or its estimate),
    ``kl_per_dim`` [B, D] its per-dimension parts where q and p factorise (else None), and
    ``samples`` the draws they came from (z [L, B, D], or [B, D] for L = 1)."""

    samples: LatentSamples
    recon: Tensor
    kl: Tensor
    kl_per_dim: Tensor | None

    @property
    def elbo(self) -> Tensor:
        return -(self.recon + self.kl)

    @property
    def per_dimension(self) -> dict[str, Tensor]:
        """The per-dimension parts as :class:`~vaelab.objectives.base.ObjectiveOutput` holds
        them."""
        return {"kl": self.kl_per_dim} if self.kl_per_dim is not None else {}


@checked_arguments("objective")
class EvidenceEstimator:
    """The ELBO's reconstruction and KL terms of ``num_samples`` draws of q(z|x) (module
    doc). :meth:`setup` resolves ``kl=auto`` and refuses what cannot apply to the model, in
    one line each; calling it returns :class:`EvidenceTerms`."""

    def __init__(
        self,
        kl: KLEstimator = "auto",
        num_samples: PositiveInt = 1,
        gradient: GradientEstimator = "reparam",
    ) -> None:
        self.kl = kl
        self.num_samples = int(num_samples)
        self.gradient = gradient
        if gradient == "stl" and kl == "analytic":
            raise VaelabError(
                "objective.gradient=stl drops the score term of a Monte-Carlo KL; the "
                "closed-form KL has none: use objective.kl=monte_carlo (or auto)"
            )
        self.kl_estimator = (
            "monte_carlo" if gradient == "stl" or kl == "monte_carlo" else "analytic"
        )
        #: why Monte Carlo was chosen for a model without a single q and p (None otherwise)
        self.kl_estimator_reason: str | None = None
        #: q and p factorise over the latent dimensions: the KL is also given per dimension
        self.per_dimension = False

    def setup(self, model: LatentVariableModel, option: str) -> None:
        """Resolve the KL estimator for ``model`` (``option``: ``objective=<name>`` for
        messages). Idempotent."""
        self.kl_estimator_reason, self.per_dimension = None, False
        structure = model.latent_structure
        if not structure.is_flat:
            if self.kl == "analytic":
                raise VaelabError(
                    f"{option} objective.kl=analytic needs one posterior q(z|x) and one prior "
                    f"p(z), but {type(model).__name__}'s latent is {len(structure.layers)} "
                    "stochastic layers; use objective.kl=auto or objective.kl=monte_carlo "
                    "(log q − log p of every layer, summed)"
                )
            self.kl_estimator = "monte_carlo"
            self.kl_estimator_reason = (
                f"{type(model).__name__} has {len(structure.layers)} stochastic layers: the KL "
                "has no closed form"
            )
        elif not structure.encoded_posterior:
            if self.kl == "analytic":
                raise VaelabError(
                    f"{option} objective.kl=analytic needs the posterior q(z|x) of the samples, "
                    f"but {type(model).__name__} moves z after q(z₀|x) with its decoder (and "
                    "scores auxiliary variables): use objective.kl=auto or "
                    "objective.kl=monte_carlo"
                )
            self.kl_estimator = "monte_carlo"
            self.kl_estimator_reason = (
                f"{type(model).__name__} moves z after q(z₀|x): the KL of its extended space "
                "has no closed form"
            )
        else:
            probe = probe_latent(model)
            analytic = has_analytic_kl(probe.posterior, probe.prior)
            if self.kl == "analytic" and not analytic:
                raise VaelabError(
                    f"{option} objective.kl=analytic: torch.distributions has no closed-form KL "
                    f"between the posterior ({type(probe.posterior).__name__}) and the prior "
                    f"({type(probe.prior).__name__}); use objective.kl=auto or "
                    "objective.kl=monte_carlo"
                )
            if self.kl == "auto" and self.gradient == "reparam":
                self.kl_estimator = "analytic" if analytic else "monte_carlo"
            self.per_dimension = (
                factorised_marginals(probe.posterior) is not None
                and factorised_marginals(probe.prior) is not None
            )
        if self.gradient == "stl":
            check_stopped_posterior(model, f"{option} with stl")

    def resolved_choices(self) -> dict[str, Any]:
        choices: dict[str, Any] = {"kl_estimator": self.kl_estimator}
        if self.kl_estimator_reason is not None:
            choices["kl_estimator_reason"] = self.kl_estimator_reason
        return choices

    def _with_rejection_correction(
        self, samples, recon: Tensor, kl: Tensor, score: Tensor, sample_axis: bool
    ) -> tuple[Tensor, Tensor]:
        """``recon`` and ``kl`` with zero added whose gradient is the correction term g_cor of a
        reparameterised rejection sampler (posteriors/structure.rejection_score): the detached
        integrand times (log π − sg[log π]); values unchanged, the β weighting still applies to
        the KL's share. A closed-form KL does not depend on the sample and gets none."""
        moved = score - score.detach()
        recon = recon - sample_mean(samples.log_likelihood.detach() * moved, sample_axis)
        if self.kl_estimator != "analytic":
            integrand = (samples.log_posterior - samples.log_prior).detach()
            kl = kl + sample_mean(integrand * moved, sample_axis)
        return recon, kl

    def __call__(self, model: LatentVariableModel, x: Tensor, y: Tensor | None) -> EvidenceTerms:
        sample_axis = self.num_samples > 1  # one sample: z is [B, D], no axis to average
        samples = model.sample_latents(x, y, self.num_samples if sample_axis else None)
        recon = -sample_mean(samples.log_likelihood, sample_axis)
        kl_per_dim: Tensor | None = None
        if self.kl_estimator == "analytic":
            if self.per_dimension:
                kl_per_dim = model.prior.kl_per_dimension(
                    factorised_marginals(samples.posterior), y
                )
            else:
                kl = kl_divergence(samples.posterior, model.prior.distribution_given(y))
        else:
            stl = self.gradient == "stl" and torch.is_grad_enabled()
            if self.per_dimension:
                scored = with_stopped_parameters(samples.posterior) if stl else samples.posterior
                prior = factorised_marginals(model.prior.distribution_given(y))
                kl_per_dim = sample_mean(
                    factorised_marginals(scored).log_prob(samples.z) - prior.log_prob(samples.z),
                    sample_axis,
                )
            else:
                log_prior = samples.log_prior  # scored before q, as the densities are drawn
                log_posterior = (
                    model.log_posterior_stopped(samples, x, y) if stl else samples.log_posterior
                )
                kl = sample_mean(log_posterior - log_prior, sample_axis)
        if kl_per_dim is not None:  # per-dimension terms; their sum is the KL
            kl = kl_per_dim.sum(-1)
        score = rejection_score(samples.posterior, samples.z) if torch.is_grad_enabled() else None
        if score is not None:  # a rejection sampler: add g_cor = E[f ∇ log π(ε|θ)]
            recon, kl = self._with_rejection_correction(samples, recon, kl, score, sample_axis)
        return EvidenceTerms(samples=samples, recon=recon, kl=kl, kl_per_dim=kl_per_dim)
