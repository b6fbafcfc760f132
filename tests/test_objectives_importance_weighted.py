"""vaelab.objectives.importance_weighted and its bounds: MIWAE, CIWAE and PIWAE (Rainforth et
al. 2018): their special cases are the ELBO and IWAE on the same draws, their order on the same
draws is Jensen's, and PIWAE's one surrogate has the IWAE gradient for the decoder and the MIWAE
gradient for the encoder (checked against autograd of each bound separately)."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor

from tests.linear_gaussian import copies, linear_gaussian_vae, log_evidence, run, small_mlp_vae
from vaelab.errors import VaelabError
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.models.vae import VAE
from vaelab.objectives import CIWAE, ELBO, IWAE, MIWAE, PIWAE, Objective, ObjectiveOutput
from vaelab.schedules import ConstantBeta, LinearWarmup
from vaelab.train import train


def seeded(objective: Objective, vae: VAE, x: Tensor, seed: int = 11) -> ObjectiveOutput:
    """Set up (which may probe the model), then evaluate on the draws of ``seed``."""
    weighting = ConstantBeta(1.0)
    objective.setup(vae, weighting, {})
    torch.manual_seed(seed)
    return objective(vae, x, None, weighting, 0)


def test_miwae_with_one_group_is_iwae_and_with_one_sample_the_elbo():
    vae, x = small_mlp_vae()
    iwae = seeded(IWAE(num_samples=6), vae, x)
    miwae = seeded(MIWAE(num_groups=1, num_samples=6), vae, x)
    torch.testing.assert_close(miwae.bound, iwae.bound)
    torch.testing.assert_close(miwae.loss, iwae.loss)
    elbo = seeded(ELBO(kl="monte_carlo", num_samples=7), vae, x)
    miwae = seeded(MIWAE(num_groups=7, num_samples=1), vae, x)
    torch.testing.assert_close(miwae.bound, elbo.bound)
    torch.testing.assert_close(miwae.terms["elbo"], elbo.bound)


def test_ciwae_at_beta_one_is_the_elbo_and_at_zero_iwae():
    vae, x = small_mlp_vae()
    elbo = seeded(ELBO(kl="monte_carlo", num_samples=5), vae, x)
    torch.testing.assert_close(seeded(CIWAE(5, elbo_weight=1.0), vae, x).bound, elbo.bound)
    iwae = seeded(IWAE(num_samples=5), vae, x)
    ciwae = seeded(CIWAE(5, elbo_weight=0.0), vae, x)
    torch.testing.assert_close(ciwae.bound, iwae.bound)
    torch.testing.assert_close(ciwae.terms["iwae_bound"], iwae.bound)
    # in between: the convex combination of the two on the same draws
    half = seeded(CIWAE(5, elbo_weight=0.3), vae, x)
    torch.testing.assert_close(half.bound, 0.3 * elbo.bound + 0.7 * iwae.bound)


def test_miwae_from_log_weights_by_hand():
    """(1/M) Σ_m log (1/k) Σ_i w_mi, written out for M = 2, k = 3."""
    columns = [[0.0, 1.0, -2.0, 3.0, 0.0, 1.0], [-1.0, 2.0, 0.5, -3.0, 0.0, 1.0]]

    def miwae(values: list[float]) -> float:
        groups = (values[:3], values[3:])
        return sum(math.log(sum(math.exp(v) for v in group) / 3) for group in groups) / 2

    log_weights = torch.tensor(columns).T  # [M·k = 6, B = 2]
    by_hand = torch.tensor([miwae(column) for column in columns])
    torch.testing.assert_close(MIWAE(2, 3).bound(log_weights), by_hand.float())


def test_elbo_miwae_iwae_are_ordered_on_the_same_draws():
    """Jensen on each draw: mean log w ≤ (1/M) Σ_m log mean_group w ≤ log mean_all w; PIWAE logs
    all three of the same M·k draws."""
    vae, x = small_mlp_vae()
    out = seeded(PIWAE(num_groups=3, num_samples=4), vae, x)
    assert (out.terms["elbo"] <= out.terms["miwae_bound"] + 1e-5).all()
    assert (out.terms["miwae_bound"] <= out.bound + 1e-5).all()
    assert (out.terms["miwae_bound"] < out.bound).any()


@pytest.mark.parametrize("objective", [MIWAE(3, 4), CIWAE(6, 0.4), PIWAE(3, 4)])
def test_every_variant_is_log_evidence_at_the_exact_posterior(objective):
    """q = p(z|x): every weight is p(x), so every bound is log p(x) on every draw."""
    vae = linear_gaussian_vae(mu=1.5 / 2, log_var=math.log(0.5))
    bound = run(objective, vae, copies(num=20)).bound
    torch.testing.assert_close(bound, torch.full_like(bound, log_evidence(1.5)), rtol=0, atol=1e-5)


def encoder_and_decoder_parameters(vae: VAE) -> tuple[list, list]:
    return list(vae.encoder.parameters()), list(vae.decoder.parameters())


def test_piwae_gives_the_decoder_the_iwae_gradient_and_the_encoder_the_miwae_gradient():
    vae, x = small_mlp_vae()
    encoder, decoder = encoder_and_decoder_parameters(vae)
    num_groups, num_samples = 3, 4
    out = seeded(PIWAE(num_groups, num_samples), vae, x)
    torch.testing.assert_close(out.loss, -out.bound)  # the logged loss is −IWAE_{M·k}
    piwae = torch.autograd.grad(out.loss.sum(), encoder + decoder)

    torch.manual_seed(11)  # the same draws, both bounds written out and differentiated apart
    log_weights = vae.sample_latents(x, None, num_groups * num_samples).log_weights
    iwae = torch.logsumexp(log_weights, 0) - math.log(num_groups * num_samples)
    grouped = log_weights.reshape(num_groups, num_samples, -1)
    miwae = (torch.logsumexp(grouped, 1) - math.log(num_samples)).mean(0)
    torch.testing.assert_close(out.bound, iwae)
    torch.testing.assert_close(out.terms["miwae_bound"], miwae)
    expected_encoder = torch.autograd.grad(-miwae.sum(), encoder, retain_graph=True)
    iwae_encoder = torch.autograd.grad(-iwae.sum(), encoder, retain_graph=True)
    expected_decoder = torch.autograd.grad(-iwae.sum(), decoder, retain_graph=True)
    miwae_decoder = torch.autograd.grad(-miwae.sum(), decoder)
    for got, want in zip(piwae, expected_encoder + expected_decoder, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # the two bounds' gradients differ on both groups, so the check can tell them apart
    for ours, other in ((expected_encoder, iwae_encoder), (expected_decoder, miwae_decoder)):
        assert max((a - b).abs().max().item() for a, b in zip(ours, other, strict=True)) > 1e-3


@pytest.mark.parametrize("objective", [MIWAE(2, 2), CIWAE(3), PIWAE(2, 2)])
def test_variants_refuse_beta_weighting(objective):
    vae, _ = small_mlp_vae()
    for weighting in (ConstantBeta(0.5), LinearWarmup(1.0, 100)):
        with pytest.raises(VaelabError, match=f"objective={objective.config_name} .*beta=constant"):
            objective.setup(vae, weighting, {})


def test_variants_log_their_own_bound_and_the_elbo_beside_it():
    assert MIWAE().logged_names() == ("miwae_bound", "elbo", "recon", "kl")
    assert CIWAE().logged_names() == ("ciwae_bound", "elbo", "iwae_bound", "recon", "kl")
    assert PIWAE().logged_names() == ("piwae_bound", "elbo", "miwae_bound", "recon", "kl")


def test_bad_options_raise():
    for make, name in (
        (lambda: MIWAE(num_groups=0), r"objective\.num_groups=0 must be an integer >= 1"),
        (lambda: MIWAE(num_samples=0), r"objective\.num_samples=0 must be an integer >= 1"),
        (
            lambda: CIWAE(elbo_weight=1.5),
            r"objective\.elbo_weight=1\.5 must be a number in \[0, 1\]",
        ),
        (lambda: PIWAE(gradient="score"), r"objective\.gradient=score must be one of reparam, stl"),
    ):
        with pytest.raises(VaelabError, match=name):
            make()


# every new option value once: the three variants and the two new gradient estimators
TRAINING_OPTIONS = [
    [
        "objective=miwae",
        "objective.num_groups=2",
        "objective.num_samples=2",
        "objective.gradient=dreg",
    ],
    ["objective=ciwae", "objective.num_samples=3", "objective.gradient=stl"],
    ["objective=piwae", "objective.num_groups=2", "objective.num_samples=2"],
]


@pytest.mark.parametrize("overrides", TRAINING_OPTIONS, ids=["miwae-dreg", "ciwae-stl", "piwae"])
def test_variants_train_a_fast_dev_run(make_config, overrides):
    cfg = make_config("data=digits", "trainer.fast_dev_run=true", *overrides)
    metrics = train(cfg)
    bound = f"test/{overrides[0].split('=')[1]}_bound"
    assert math.isfinite(metrics[bound])
    assert metrics["test/elbo"] <= metrics[bound] + 1e-4  # a tighter bound than the ELBO
    # the config's gradient option reaches the objective
    gradient = next((o.split("=")[1] for o in overrides if ".gradient=" in o), "reparam")
    assert instantiate(cfg.objective).gradient == gradient


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["objective=iwae", "objective.num_samples=5", "objective.gradient=dreg"],
        ["objective=iwae", "objective.num_samples=5", "objective.gradient=stl"],
        ["objective=miwae", "objective.num_groups=2", "objective.num_samples=3"],
        ["objective=ciwae", "objective.num_samples=5"],
        [
            "objective=piwae",
            "objective.num_groups=2",
            "objective.num_samples=3",
            "objective.gradient=dreg",
        ],
    ],
    ids=["iwae-dreg", "iwae-stl", "miwae", "ciwae", "piwae-dreg"],
)
def test_variants_learn_on_real_mnist(make_config, mnist_data_dir, overrides):
    """Two short epochs on real MNIST: the training bound is finite and improves from the first
    logged step to the last; validation and test bounds are finite; the loss is −bound."""
    bound = f"{overrides[0].split('=')[1]}_bound"
    cfg = make_config(
        *overrides,
        "model.latent_dim=10",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=60",
        "trainer.limit_val_batches=3",
        "trainer.limit_test_batches=2",
        "trainer.log_every_n_steps=10",
        data_dir=mnist_data_dir,
    )
    metrics = train(cfg)
    events = EventAccumulator(str(tensorboard_dir(cfg.paths.output_dir)))
    events.Reload()
    curve = [event.value for event in events.Scalars(f"train/{bound}")]
    assert len(curve) >= 10, curve
    assert all(math.isfinite(value) for value in curve)
    # an untrained decoder gives ≈ −540 nats (784 pixels × ln 2)
    assert curve[-1] > curve[0] + 20, curve
    assert math.isfinite(metrics[f"val/{bound}"])
    assert metrics[f"test/{bound}"] > -250.0
    assert metrics["test/loss"] == pytest.approx(-metrics[f"test/{bound}"], rel=1e-5)
