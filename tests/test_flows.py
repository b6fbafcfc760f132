"""Flow posteriors (planar, radial, IAF, affine coupling) and the flow prior: log-determinants
against autograd's Jacobian, densities that integrate to one, the identity at zero parameters, the
Monte-Carlo KL chosen automatically, and one fast_dev_run each on sklearn's digits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from tests.latent_family_runs import resume_matches_straight_run, short_mnist_run_improves
from vaelab.errors import VaelabError
from vaelab.flows import (
    MADE,
    AffineCouplingStack,
    FlowDistribution,
    InverseAutoregressiveTransform,
    PlanarTransform,
    RadialTransform,
)
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO
from vaelab.posteriors.affine_coupling import AffineCouplingPosterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.posteriors.iaf import IAFPosterior
from vaelab.posteriors.planar import PlanarFlowPosterior
from vaelab.posteriors.radial import RadialFlowPosterior
from vaelab.posteriors.structure import factorised_marginals
from vaelab.priors.flow import FlowPrior
from vaelab.schedules.constant import ConstantBeta
from vaelab.train import train

SHAPE = (1, 4, 4)
CONTEXT = 3


def randomize(module: nn.Module, scale: float = 0.5) -> None:
    """Every parameter to scale · N(0, 1) (zero-initialised output layers included)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(scale * torch.randn_like(parameter))


def posteriors() -> list[pytest.param]:
    return [
        pytest.param(lambda: PlanarFlowPosterior(num_flows=3), id="planar"),
        pytest.param(lambda: PlanarFlowPosterior(num_flows=3, amortized=False), id="planar-shared"),
        pytest.param(lambda: RadialFlowPosterior(num_flows=3), id="radial"),
        pytest.param(lambda: RadialFlowPosterior(num_flows=3, amortized=False), id="radial-shared"),
        pytest.param(lambda: IAFPosterior(2, hidden_dims=(8,), context_dim=CONTEXT), id="iaf"),
        pytest.param(
            lambda: IAFPosterior(2, (8, 8), context_dim=CONTEXT, update="gated"), id="iaf-gated"
        ),
        pytest.param(lambda: IAFPosterior(2, (8,), context_dim=0), id="iaf-no-context"),
        pytest.param(
            lambda: AffineCouplingPosterior(3, (8,), context_dim=CONTEXT), id="affine_coupling"
        ),
    ]


# -- log-determinants ------------------------------------------------------------------------
def transforms_of_each_kind(dim: int) -> list[pytest.param]:
    torch.manual_seed(1)
    made = MADE(dim, (7, 6), CONTEXT, reverse=True)
    randomize(made)
    coupling = AffineCouplingStack(dim, 2, (6,), CONTEXT)
    randomize(coupling)
    context = torch.randn(CONTEXT)
    return [
        PlanarTransform(torch.randn(dim), torch.randn(dim), torch.randn(())),
        RadialTransform(torch.randn(dim), torch.randn(()), torch.randn(())),
        # raw β far below: β close to its bound −α, a strong contraction towards z₀
        RadialTransform(torch.randn(dim), torch.tensor(0.5), torch.tensor(-4.0)),
        InverseAutoregressiveTransform(made, context, gated=False, gate_bias=0.0),
        InverseAutoregressiveTransform(made, context, gated=True, gate_bias=1.0),
        *coupling.transforms(context),
    ]


@pytest.mark.parametrize("dim", [1, 3, 4])
def test_log_det_equals_autograd_jacobian_and_inverse_inverts(dim):
    names = [
        "planar",
        "radial",
        "radial-contracting",
        "iaf-affine",
        "iaf-gated",
        "coupling-even",
        "coupling-odd",
    ]
    for name, transform in zip(names, transforms_of_each_kind(dim), strict=True):
        x = torch.randn(dim, dtype=torch.float64).float()
        jacobian = torch.autograd.functional.jacobian(transform, x)
        expected = torch.linalg.slogdet(jacobian.double()).logabsdet.float()
        y = transform(x)
        torch.testing.assert_close(
            transform.log_abs_det_jacobian(x, y), expected, rtol=1e-4, atol=1e-5, msg=name
        )
        # the inverse from scratch (a clone defeats the cache of the last (x, y) pair)
        torch.testing.assert_close(transform.inv(y.clone()), x, rtol=1e-4, atol=1e-5, msg=name)


def test_radial_invertibility_condition_holds_for_any_raw_parameters():
    """β ≥ −α (Rezende & Mohamed 2015, Appendix A.2) by construction: for raw parameters from
    −30 to 30 β + α > 0, the radial profile r ↦ r(1 + βh) strictly increases (f is one-to-one)
    and the inverse recovers x."""
    raw = torch.linspace(-30.0, 30.0, 13, dtype=torch.float64)
    raw_alpha, raw_beta = torch.cartesian_prod(raw, raw).unbind(-1)
    transform = RadialTransform(
        torch.zeros(len(raw_alpha), 3, dtype=torch.float64), raw_alpha, raw_beta
    )
    assert bool((transform.beta + transform.alpha >= 0).all())
    radii = torch.linspace(0.0, 5.0, 200, dtype=torch.float64)[:, None]
    profile = radii * (1.0 + transform.beta / (transform.alpha + radii))
    assert bool((profile.diff(dim=0) > 0).all())
    torch.manual_seed(5)
    x = torch.randn(len(raw_alpha), 3, dtype=torch.float64)
    torch.testing.assert_close(transform.inv(transform(x).clone()), x, rtol=1e-6, atol=1e-6)
    assert bool(torch.isfinite(transform.log_abs_det_jacobian(x, transform(x))).all())


def test_autoregressive_outputs_depend_only_on_earlier_inputs():
    made = MADE(5, (11, 9), CONTEXT, reverse=False)
    randomize(made)
    x = torch.randn(5)
    jacobian = torch.autograd.functional.jacobian(
        lambda z: torch.cat(made(z, torch.zeros(CONTEXT))), x
    )
    for head in jacobian.split(5):
        assert torch.equal(head.triu(), torch.zeros(5, 5))  # ∂out_i/∂z_j = 0 for j ≥ i
    assert jacobian.split(5)[0].tril(-1).abs().sum() > 0


# -- densities -------------------------------------------------------------------------------
def grid(dim: int, half_width: float = 10.0) -> tuple[torch.Tensor, float]:
    """Grid points [N, dim] over [−w, w]^dim and the volume of one cell (a Riemann sum of a
    smooth density that vanishes at the edges is accurate far beyond the tolerance used)."""
    axis = torch.linspace(-half_width, half_width, 2001 if dim == 1 else 201)
    cell = float(axis[1] - axis[0]) ** dim
    return torch.cartesian_prod(*[axis] * dim).reshape(-1, dim), cell


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("make", posteriors())
def test_flow_posterior_density_integrates_to_one(make, dim):
    posterior = make()
    num = posterior.num_params(dim)
    randomize(posterior, scale=0.2)
    torch.manual_seed(2)
    encoder_output = 0.5 * torch.randn(1, num)
    encoder_output[:, dim : 2 * dim] = -1.0  # σ₀ = e^{-1/2}
    q = posterior.distribution(encoder_output)
    points, cell = grid(dim)
    with torch.no_grad():
        mass = (q.log_prob(points[:, None, :]).exp().sum() * cell).item()
    assert mass == pytest.approx(1.0, abs=2e-3)
    # a sample's density (cached forward pass) equals the inverse's from scratch
    z = q.sample((6,))
    torch.testing.assert_close(q.log_prob(z), q.log_prob(z.clone()), rtol=1e-4, atol=1e-4)


def exact_at_zero() -> list[pytest.param]:
    """The flows that are the identity at zero parameters (the gated IAF update scales z by
    sigmoid(gate_bias) there: it is never exactly the identity)."""
    return [case for case in posteriors() if case.id != "iaf-gated"]


@pytest.mark.parametrize("make", exact_at_zero())
def test_zero_flow_parameters_give_the_base_posterior_exactly(make):
    dim = 3
    posterior = make()
    num = posterior.num_params(dim)
    with torch.no_grad():
        for parameter in posterior.parameters():
            parameter.zero_()
    encoder_output = torch.zeros(4, num)
    encoder_output[:, : 2 * dim] = torch.randn(4, 2 * dim)
    q = posterior.distribution(encoder_output)
    base = DiagonalGaussianPosterior().distribution(encoder_output[:, : 2 * dim])
    torch.manual_seed(3)
    z = q.rsample((5,))
    torch.manual_seed(3)
    assert torch.equal(z, base.rsample((5,)))
    assert torch.equal(q.log_prob(z), base.log_prob(z))
    assert torch.equal(q.mean, base.mean)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlanarFlowPosterior(2, amortized=False),
        lambda: RadialFlowPosterior(2, amortized=False),
        lambda: IAFPosterior(2, (8,), context_dim=CONTEXT),
        lambda: AffineCouplingPosterior(2, (8,), context_dim=CONTEXT),
    ],
    ids=["planar-shared", "radial-shared", "iaf", "affine_coupling"],
)
def test_fresh_flows_start_as_the_identity(make):
    """Freshly built flows whose parameters are not amortised start as the base posterior."""
    posterior = make()
    encoder_output = torch.randn(4, posterior.num_params(3))
    q = posterior.distribution(encoder_output)
    base = DiagonalGaussianPosterior().distribution(encoder_output[:, :6])
    z = base.sample((3,))
    torch.testing.assert_close(q.log_prob(z.clone()), base.log_prob(z))


def test_flow_prior_starts_at_n01_and_its_density_integrates_to_one():
    prior = FlowPrior(num_flows=3, hidden_dims=(8,))
    prior.setup(2, SHAPE, encode=None)
    z = torch.randn(5, 2)
    torch.testing.assert_close(prior.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    randomize(prior.flow)
    points, cell = grid(2)
    with torch.no_grad():
        mass = (prior.log_prob(points).exp().sum() * cell).item()
    assert mass == pytest.approx(1.0, abs=2e-3)
    samples = prior.sample(7)
    torch.testing.assert_close(
        prior.log_prob(samples), prior.log_prob(samples.clone()), rtol=1e-5, atol=1e-5
    )
    prior.log_prob(z).sum().backward()
    first_layer = prior.flow.networks[0].parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in first_layer)


def test_mean_is_the_flow_of_the_base_mean_and_the_variance_is_repeatable():
    posterior = IAFPosterior(2, (8,), context_dim=CONTEXT)
    num = posterior.num_params(3)
    randomize(posterior, scale=0.2)
    encoder_output = torch.randn(4, num)
    encoder_output[:, 3:6] = -1.0
    q = posterior.distribution(encoder_output)
    pushed = q.base_dist.mean
    for transform in q.transforms:
        pushed = transform(pushed)
    assert torch.equal(q.mean, pushed)
    state = torch.get_rng_state()
    first = q.variance
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    assert torch.equal(first, q.variance)
    draws = q.sample((20_000,))
    torch.testing.assert_close(first, draws.var(0), rtol=0.5, atol=1e-3)  # 128 draws: ±13 % per σ


def test_latent_dim_is_fixed_once_built():
    posterior = IAFPosterior(2, (8,))
    posterior.num_params(3)
    assert posterior.num_params(3) == 2 * 3 + 50
    with pytest.raises(VaelabError, match="latent_dim=3"):
        posterior.num_params(4)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: IAFPosterior(num_flows=0),
        lambda: IAFPosterior(hidden_dims=()),
        lambda: IAFPosterior(update="lstm"),
        lambda: PlanarFlowPosterior(num_flows=0),
        lambda: RadialFlowPosterior(num_flows=0),
        lambda: AffineCouplingPosterior(context_dim=-1),
        lambda: FlowPrior(num_flows=0),
    ],
)
def test_bad_settings_raise_one_clear_error(bad):
    with pytest.raises(VaelabError, match=r"model\.(posterior|prior)\."):
        bad()


# -- the ELBO's KL ---------------------------------------------------------------------------
def small_vae(posterior=None, prior=None) -> VAE:
    torch.manual_seed(0)
    return VAE(
        lambda **sizes: mlp(hidden_dims=(16,), **sizes),
        3,
        SHAPE,
        posterior=posterior,
        prior=prior,
    )


@pytest.mark.parametrize(
    ("posterior", "prior"),
    [
        (PlanarFlowPosterior(2), None),
        (RadialFlowPosterior(2), None),
        (IAFPosterior(2, (8,)), None),
        (AffineCouplingPosterior(2, (8,)), None),
        (None, FlowPrior(2, (8,))),
        (IAFPosterior(2, (8,)), FlowPrior(2, (8,))),
    ],
    ids=["planar", "radial", "iaf", "affine_coupling", "flow-prior", "iaf+flow-prior"],
)
def test_kl_auto_is_monte_carlo_and_analytic_is_refused(posterior, prior):
    vae = small_vae(posterior, prior)
    elbo = ELBO(kl="auto")
    elbo.setup(vae, ConstantBeta(1.0), {})
    assert elbo.resolved_choices() == {"kl_estimator": "monte_carlo"}
    x = torch.rand(5, *SHAPE)
    torch.manual_seed(4)
    out = elbo(vae, x, None, ConstantBeta(1.0), 0)
    # the Monte-Carlo KL is log q − log p on the sample the reconstruction term used
    torch.manual_seed(4)
    samples = vae.sample_latents(x)
    torch.testing.assert_close(out.terms["kl"], samples.log_posterior - samples.log_prior)
    torch.testing.assert_close(out.terms["recon"], -samples.log_likelihood)
    with pytest.raises(VaelabError, match=r"objective\.kl=monte_carlo"):
        ELBO(kl="analytic").setup(vae, ConstantBeta(1.0), {})


def test_flow_distribution_is_what_encode_returns():
    vae = small_vae(IAFPosterior(2, (8,)))
    q = vae.encode(torch.rand(2, *SHAPE))
    assert isinstance(q, FlowDistribution)
    assert isinstance(q.base_dist, Independent)
    assert q.batch_shape == (2,)
    assert q.event_shape == (3,)
    assert factorised_marginals(q) is None


# -- one step of real training ---------------------------------------------------------------
FLOW_OPTIONS = [
    ["posterior=planar", "model.posterior.num_flows=2"],
    ["posterior=radial", "model.posterior.num_flows=2"],
    ["posterior=iaf", "model.posterior.hidden_dims=[16]", "model.posterior.context_dim=4"],
    ["posterior=affine_coupling", "model.posterior.hidden_dims=[16]"],
    ["prior=flow", "model.prior.hidden_dims=[16]"],
]
FLOW_IDS = ["planar", "radial", "iaf", "affine_coupling", "flow-prior"]
#: the fast runs also cover the IWAE objective (flow posterior and flow prior together)
FAST_RUNS = [*FLOW_OPTIONS, [*FLOW_OPTIONS[2], *FLOW_OPTIONS[4], "objective=iwae"]]
FAST_IDS = [*FLOW_IDS, "iaf+flow-prior+iwae"]
#: no pictures, logger or test stage: the training step, validation and checkpoint are the point
CHEAP = ["callbacks=none", "logger=csv", "test=false"]


@pytest.mark.parametrize("option", FAST_RUNS, ids=FAST_IDS)
def test_fast_dev_run_on_digits(option, make_config, tmp_path):
    cfg = make_config(
        "data=digits", "trainer.fast_dev_run=true", *CHEAP, *option, data_dir=tmp_path
    )
    metrics = train(cfg)
    assert all(math.isfinite(v) for v in metrics.values())
    torch.testing.assert_close(
        metrics["val/elbo"], -(metrics["val/recon"] + metrics["val/kl"]), rtol=1e-4, atol=1e-3
    )
    if "objective=iwae" in option:  # Burda et al. 2015, Theorem 1: the k-sample bound is tighter
        assert metrics["val/iwae_bound"] >= metrics["val/elbo"]


# -- real MNIST (slow) -------------------------------------------------------------------------
#: a small network, so that each run is a few seconds on a CPU
SMALL_MODEL = ["model.latent_dim=8", "model.net.hidden_dims=[128]"]


@pytest.mark.slow
@pytest.mark.parametrize("option", FLOW_OPTIONS, ids=FLOW_IDS)
def test_short_mnist_run_improves_and_iw_nll_is_below_the_negative_elbo(
    option, mnist_data_dir, tmp_path
):
    """100 steps on dynamically binarised MNIST: −ELBO falls well below the untrained model's
    (from ~545 nats to ~210), the flow's own parameters move, and the IW estimate (k = 100) lies
    below −ELBO."""
    run = short_mnist_run_improves(
        ["data=binarized_mnist", *SMALL_MODEL, *option], mnist_data_dir, tmp_path, min_gain=200
    )
    flow_part = "prior." if option[0] == "prior=flow" else "posterior."
    flow = {n: p for n, p in run.module.model.named_parameters() if n.startswith(flow_part)}
    # amortised flows live in the encoder: a flow part may hold no parameters of its own
    assert all(not torch.equal(run.parameters_before[n], p) for n, p in flow.items())


@pytest.mark.slow
@pytest.mark.parametrize("option", FLOW_OPTIONS, ids=FLOW_IDS)
def test_resume_after_two_epochs_reproduces_four_straight_epochs(option, mnist_data_dir, tmp_path):
    """As tests/test_train.py for the default model: 2 + 2 epochs from last.ckpt end where 4
    straight epochs do (the flow's parameters and their optimiser state are checkpointed)."""
    resume_matches_straight_run([*SMALL_MODEL, *option], mnist_data_dir, tmp_path)
