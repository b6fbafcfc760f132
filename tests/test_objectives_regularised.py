"""vaelab.objectives.regularised, the base of β-TCVAE, FactorVAE, DIP-VAE, InfoVAE and WAE: each
runs with every posterior and prior the ELBO engine takes (finite per-data-point terms, a loss
that trains the encoder), or refuses the priors it cannot use in one error."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.likelihoods import BernoulliLikelihood
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives.beta_tcvae import BetaTCVAE
from vaelab.objectives.dip_vae import DIPVAE
from vaelab.objectives.factor_vae import FactorVAE
from vaelab.objectives.info_vae import InfoVAE
from vaelab.objectives.wae_mmd import WAEMMD
from vaelab.posteriors import DiagonalGaussianPosterior, FullCovarianceGaussianPosterior
from vaelab.priors.mixture import MixturePrior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.priors.vamp import VampPrior
from vaelab.schedules import ConstantBeta


def small_vae(posterior: str, prior: str) -> VAE:
    posteriors = {"diagonal": DiagonalGaussianPosterior, "full": FullCovarianceGaussianPosterior}
    priors = {
        "standard_normal": StandardNormalPrior,
        "mixture": lambda: MixturePrior(3),
        "vamp": lambda: VampPrior(num_pseudo_inputs=4),
    }
    return VAE(
        partial(mlp, hidden_dims=(16,)),
        latent_dim=3,
        input_shape=(1, 4, 4),
        posterior=posteriors[posterior](),
        likelihood=BernoulliLikelihood(),
        prior=priors[prior](),
    )


ALL_OBJECTIVES = {
    "beta_tcvae": lambda: BetaTCVAE(),
    "factor_vae": lambda: FactorVAE(discriminator_width=8, discriminator_depth=1),
    "dip_vae_i": lambda: DIPVAE("i"),
    "dip_vae_ii": lambda: DIPVAE("ii"),
    "info_vae": lambda: InfoVAE(),
    "wae_mmd": lambda: WAEMMD(deterministic_encoder=False),
}
#: the pairs that must be refused: a dimension-wise KL or an identity covariance needs N(0, I)
REFUSED = {("beta_tcvae", "mixture"), ("beta_tcvae", "vamp")} | {
    (dip, prior) for dip in ("dip_vae_i", "dip_vae_ii") for prior in ("mixture", "vamp")
}


@pytest.mark.parametrize("objective_name", sorted(ALL_OBJECTIVES))
def test_each_objective_runs_or_refuses_with_every_posterior_and_prior(objective_name):
    torch.manual_seed(0)
    x = torch.rand(6, 1, 4, 4).round()
    for posterior in ("diagonal", "full"):
        for prior in ("standard_normal", "mixture", "vamp"):
            model, objective = small_vae(posterior, prior), ALL_OBJECTIVES[objective_name]()
            if (objective_name, prior) in REFUSED:
                with pytest.raises(VaelabError, match="prior=standard_normal"):
                    objective.setup(model, ConstantBeta(1.0), {"num_train": 100})
                continue
            objective.setup(model, ConstantBeta(1.0), {"num_train": 100})
            out = objective(model, x, None, ConstantBeta(1.0), 0)
            values = [out.loss, *out.terms.values()] + (
                [out.bound] if out.bound is not None else []
            )
            assert all(v.shape == (6,) and torch.isfinite(v).all() for v in values), (
                posterior,
                prior,
            )
            out.loss.mean().backward()  # the loss trains the encoder
            assert any(p.grad.abs().sum() > 0 for p in model.encoder.parameters())
