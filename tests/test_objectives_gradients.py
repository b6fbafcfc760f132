"""vaelab.objectives.gradients: objective.gradient = reparam | stl | dreg on models where the
answers are known.

Linear-Gaussian model (scripts/gradient_snr.py): p(z) = N(0, 1), p(x|z) = N(a z + b, 1),
q(z|x) = N(μ, σ²) shared by all x; for a = 1, b = 0 the exact posterior is N(x/2, 1/2). Each
copy of x draws its own samples, so one backward gives one independent gradient estimate per
copy.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
import torch
from torch import Tensor
from torch.distributions import AffineTransform, Independent, Normal, TransformedDistribution

from tests.linear_gaussian import small_mlp_vae
from vaelab.errors import VaelabError
from vaelab.evaluation.gradient_snr import gradient_snr, inference_parameters, snr_of_draws
from vaelab.models.hierarchical import HierarchicalVAE
from vaelab.models.interface import LatentSamples
from vaelab.models.vae import VAE
from vaelab.objectives import CIWAE, ELBO, IWAE, MIWAE, PIWAE
from vaelab.objectives.importance_weighted import ImportanceWeightedObjective
from vaelab.paths import PROJECT_ROOT
from vaelab.posteriors.base import Posterior
from vaelab.schedules import ConstantBeta


def load_script():
    spec = importlib.util.spec_from_file_location(
        "gradient_snr", PROJECT_ROOT / "scripts" / "gradient_snr.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


snr_script = load_script()
X = snr_script.X
EXACT_POSTERIOR = {"mu": X / 2, "log_var": math.log(0.5), "a": 1.0, "b": 0.0}


def draws(estimator: str, k: int, num_copies: int, seed: int = 0, **vae_options):
    vae = snr_script.linear_gaussian_vae(**vae_options)
    return snr_script.gradient_draws(vae, IWAE(k, estimator), num_copies, seed)


def test_elbo_with_stl_vanishes_at_the_exact_posterior_and_matches_iwae_one():
    """The ELBO's STL (Monte-Carlo KL with stopped q) is IWAE_1's STL, draw for draw."""
    vae = snr_script.linear_gaussian_vae(**EXACT_POSTERIOR)
    elbo = ELBO(gradient="stl")
    got = snr_script.gradient_draws(vae, elbo, 200, seed=4)
    assert elbo.resolved_choices() == {"kl_estimator": "monte_carlo", "gradient": "stl"}
    torch.testing.assert_close(got.encoder, torch.zeros_like(got.encoder), rtol=0, atol=1e-5)
    vae = snr_script.linear_gaussian_vae(mu=0.2, log_var=0.3)
    elbo = snr_script.gradient_draws(vae, ELBO(kl="monte_carlo", gradient="stl"), 50, seed=4)
    vae = snr_script.linear_gaussian_vae(mu=0.2, log_var=0.3)
    iwae = snr_script.gradient_draws(vae, IWAE(1, "stl"), 50, seed=4)
    torch.testing.assert_close(elbo.encoder, iwae.encoder)
    assert elbo.encoder.abs().min() > 0


def test_elbo_refuses_dreg_and_stl_with_the_closed_form_kl():
    with pytest.raises(VaelabError, match="gradient=stl"):
        ELBO(gradient="dreg")
    with pytest.raises(VaelabError, match="kl=monte_carlo"):
        ELBO(kl="analytic", gradient="stl")


@pytest.mark.parametrize("k", [1, 5])
def test_stl_and_dreg_encoder_gradients_vanish_at_the_exact_posterior(k):
    """q = p(z|x): log w = log p(x) for every z, so ∂ log w/∂z = 0 on every draw; the
    reparameterisation gradient keeps the score term, zero only in expectation."""
    reparam = draws("reparam", k, 200, **EXACT_POSTERIOR)
    assert reparam.encoder.abs().max() > 1e-2
    for estimator in ("stl", "dreg"):
        got = draws(estimator, k, 200, **EXACT_POSTERIOR)
        torch.testing.assert_close(got.encoder, torch.zeros_like(got.encoder), rtol=0, atol=1e-5)
        # the decoder's gradient is the reparameterisation one, draw for draw
        torch.testing.assert_close(got.decoder_sum, reparam.decoder_sum, rtol=1e-5, atol=1e-4)


def test_dreg_is_unbiased_and_stl_is_not_for_k_above_one():
    """E[DReG] = ∇ IWAE_k = E[reparam] (Tucker et al. 2018); STL drops a term whose mean is not
    zero once k > 1 (within 4 standard errors vs beyond 20)."""
    num_copies, k = 20_000, 4
    reparam = draws("reparam", k, num_copies, seed=1).encoder
    dreg = draws("dreg", k, num_copies, seed=2).encoder
    stl = draws("stl", k, num_copies, seed=3).encoder

    def gap_in_standard_errors(a: Tensor, b: Tensor) -> Tensor:
        se = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
        return (a.mean(0) - b.mean(0)).abs() / se

    assert (gap_in_standard_errors(dreg, reparam) < 4).all()
    assert gap_in_standard_errors(stl, reparam)[0] > 20


def test_encoder_snr_falls_with_k_for_iwae_and_not_for_dreg():
    """Rainforth et al. 2018, Theorem 1: the IWAE encoder gradient's SNR is O(1/√k); DReG's
    grows (Tucker et al. 2018). The table is the one scripts/gradient_snr.py prints."""
    rows = snr_script.snr_table(ks=(1, 16, 64), estimators=("reparam", "dreg"), num_copies=5000)
    snr = {(row.k, row.estimator): row.snr_mu for row in rows}
    assert snr[(1, "reparam")] > snr[(16, "reparam")] > snr[(64, "reparam")]
    assert snr[(64, "reparam")] < snr[(1, "reparam")] / 4  # √64 = 8 in theory
    assert snr[(1, "dreg")] < snr[(16, "dreg")] < snr[(64, "dreg")]


def dreg_by_hand(
    vae: VAE, x: Tensor, num: int, path_weights, generative_weights, seed: int
) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """The encoder's Σ_j c_j ∂v_j/∂z_j ∂z_j/∂φ and the decoder's Σ_j a_j ∇_θ log p(x, z_j),
    with v_j = log p(x, z_j) − log q(z_j|x) at stopped q parameters, written out."""
    torch.manual_seed(seed)
    samples: LatentSamples = vae.sample_latents(x, None, num)
    normal = samples.posterior.base_dist
    stopped_q = Normal(normal.loc.detach(), normal.scale.detach()).log_prob(samples.z).sum(-1)
    stopped_weights = samples.log_likelihood + samples.log_prior - stopped_q
    log_weights = samples.log_weights.detach()
    (dz,) = torch.autograd.grad(stopped_weights.sum(), samples.z, retain_graph=True)
    path = path_weights(log_weights).unsqueeze(-1) * dz
    encoder = torch.autograd.grad(samples.z, list(vae.encoder.parameters()), -path)
    generative = (generative_weights(log_weights) * samples.log_likelihood).sum()
    decoder = torch.autograd.grad(-generative, list(vae.decoder.parameters()))
    return encoder, decoder


def group_softmax(log_weights: Tensor, groups: int) -> Tensor:
    grouped = log_weights.reshape(groups, -1, log_weights.shape[-1])
    return torch.softmax(grouped, 1).reshape(log_weights.shape)


@pytest.mark.parametrize(
    ("objective", "path_weights", "generative_weights"),
    [
        (IWAE(6, "dreg"), lambda w: torch.softmax(w, 0) ** 2, lambda w: torch.softmax(w, 0)),
        (
            MIWAE(2, 3, "dreg"),
            lambda w: group_softmax(w, 2) ** 2 / 2,
            lambda w: group_softmax(w, 2) / 2,
        ),
        (
            CIWAE(6, 0.25, "dreg"),
            lambda w: 0.25 / 6 + 0.75 * torch.softmax(w, 0) ** 2,
            lambda w: 0.25 / 6 + 0.75 * torch.softmax(w, 0),
        ),
        (
            PIWAE(2, 3, "dreg"),
            lambda w: group_softmax(w, 2) ** 2 / 2,
            lambda w: torch.softmax(w, 0),
        ),
        (
            PIWAE(2, 3, "stl"),
            lambda w: group_softmax(w, 2) / 2,
            lambda w: torch.softmax(w, 0),
        ),
    ],
    ids=["iwae", "miwae", "ciwae", "piwae-dreg", "piwae-stl"],
)
def test_path_gradients_match_the_formula_written_out(
    objective: ImportanceWeightedObjective, path_weights, generative_weights
):
    vae, x = small_mlp_vae()
    weighting = ConstantBeta(1.0)
    objective.setup(vae, weighting, {})
    torch.manual_seed(5)
    out = objective(vae, x, None, weighting, 0)
    torch.testing.assert_close(out.loss, -out.bound)  # the logged loss is the true −bound
    encoder, decoder = list(vae.encoder.parameters()), list(vae.decoder.parameters())
    got = torch.autograd.grad(out.loss.sum(), encoder + decoder)
    want_encoder, want_decoder = dreg_by_hand(
        vae, x, objective.total_samples, path_weights, generative_weights, seed=5
    )
    for a, b in zip(got, want_encoder + want_decoder, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


class AffineTransformPosterior(Posterior):
    """N(μ, σ²) written as an affine transform of N(0, 1): its parameters sit in the
    transform, which a stopped copy of the distribution does not reach."""

    def num_params(self, latent_dim: int) -> int:
        return 2 * latent_dim

    def distribution(self, encoder_output: Tensor):
        mu, log_scale = torch.chunk(encoder_output, 2, dim=-1)
        base = Normal(torch.zeros_like(mu), torch.ones_like(mu))
        return Independent(TransformedDistribution(base, [AffineTransform(mu, log_scale.exp())]), 1)


@pytest.mark.parametrize("objective", [IWAE(3, "stl"), IWAE(3, "dreg"), PIWAE(2, 2)])
def test_a_posterior_whose_parameters_cannot_be_stopped_is_refused(objective):
    vae, _ = small_mlp_vae(AffineTransformPosterior())
    with pytest.raises(VaelabError, match=r"stopped parameters.*gradient=reparam"):
        objective.setup(vae, ConstantBeta(1.0), {})
    IWAE(3, "reparam").setup(vae, ConstantBeta(1.0), {})  # the plain estimator applies


@pytest.mark.parametrize("objective", [IWAE(3, "stl"), IWAE(3, "dreg"), PIWAE(2, 2)])
def test_a_hierarchy_refuses_the_stopped_posterior_estimators_by_its_own_method(objective):
    hierarchy = HierarchicalVAE(latent_dims=[2, 2], hidden_dims=[[4], [4]], input_shape=(1, 2, 2))
    with pytest.raises(VaelabError, match=r"log_posterior_stopped.*objective.gradient=reparam"):
        objective.setup(hierarchy, ConstantBeta(1.0), {})
    IWAE(3, "reparam").setup(hierarchy, ConstantBeta(1.0), {})


def test_gradient_snr_splits_encoder_and_decoder_and_averages_per_component_snr():
    """vaelab.evaluation.gradient_snr: the encoder's parameters are those q depends on;
    per-component SNR = |mean|/std over draws, components that never vary left out."""
    vae, x = small_mlp_vae()
    assert inference_parameters(vae, x) == set(vae.encoder.parameters())
    draws = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0]])  # means 2, 5, 1; stds √2, 0, √2
    torch.testing.assert_close(snr_of_draws(draws), torch.tensor([2.0, 1.0]) / math.sqrt(2.0))
    torch.manual_seed(0)
    snr = gradient_snr(vae, IWAE(4, "dreg"), x, num_draws=8)
    assert snr.num_draws == 8
    assert 0 < snr.encoder < math.inf
    assert 0 < snr.decoder < math.inf
