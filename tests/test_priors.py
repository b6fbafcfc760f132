"""The prior group: densities against hand computations, the Monte-Carlo KL against an
independent 10⁵-sample estimate, and short training runs where IW-NLL ≤ −ELBO."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch.distributions import Normal

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.evaluation.encodings import prepare_batch
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO
from vaelab.priors.base import Prior
from vaelab.priors.mixture import MixturePrior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.priors.vamp import VampPrior
from vaelab.schedules.constant import ConstantBeta

SHAPE = (1, 5, 5)
LATENT = 3
NUM_MC = 100_000


def small_vae(prior) -> VAE:
    torch.manual_seed(0)
    return VAE(lambda **sizes: mlp(hidden_dims=(16,), **sizes), LATENT, SHAPE, prior=prior)


def log_normal(z, mean, scale):
    """log N(z; mean, diag scale²) summed over the last axis, written out."""
    return (-0.5 * ((z - mean) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def test_mixture_density_is_the_weighted_sum_of_its_components():
    vae = small_vae(MixturePrior(num_components=4))
    prior = vae.prior
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0]))
    z = torch.randn(7, LATENT)
    weights = torch.softmax(prior.logits, 0)
    scales = torch.nn.functional.softplus(prior.raw_scales) + prior.min_scale
    by_hand = torch.log(
        sum(weights[k] * log_normal(z, prior.means[k], scales[k]).exp() for k in range(4))
    )
    torch.testing.assert_close(prior.log_prob(z), by_hand, rtol=1e-5, atol=1e-5)


def test_vamp_prior_is_the_mean_posterior_at_its_pseudo_inputs():
    vae = small_vae(VampPrior(num_pseudo_inputs=6, init_mean=0.5, init_std=0.3))
    z = torch.randn(5, LATENT)
    pseudo = vae.prior.pseudo_inputs
    assert pseudo.shape == (6, *SHAPE)
    assert pseudo.min() >= 0
    assert pseudo.max() <= 1
    mean, raw = vae.encoder(pseudo).chunk(2, -1)
    scale = (0.5 * raw).exp()  # the default posterior reads log σ²
    components = torch.stack([log_normal(z, mean[k], scale[k]) for k in range(6)])
    by_hand = torch.logsumexp(components, 0) - math.log(6)
    torch.testing.assert_close(vae.prior.log_prob(z), by_hand, rtol=1e-5, atol=1e-5)
    # the prior follows the encoder: its density is differentiable in the encoder's weights
    vae.prior.log_prob(z).sum().backward()
    assert next(vae.encoder.parameters()).grad.abs().sum() > 0
    assert vae.prior.raw_pseudo_inputs.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "prior", [MixturePrior(num_components=5, init_spread=1.5), VampPrior(num_pseudo_inputs=8)]
)
def test_monte_carlo_kl_agrees_with_an_independent_estimate(prior):
    vae = small_vae(prior)
    x = torch.rand(4, *SHAPE)
    elbo = ELBO(kl="auto", num_samples=1)
    elbo.setup(vae, ConstantBeta(1.0), {})
    assert elbo.kl_estimator == "monte_carlo"
    with torch.no_grad():
        copies = x.repeat(NUM_MC // 4, 1, 1, 1)
        torch.manual_seed(1)
        kl_terms = elbo(vae, copies, None, ConstantBeta(1.0), 0).terms["kl"].reshape(-1, 4)
        # independent: z from torch's Normal, log p by hand from the prior's parameters
        mean, raw = vae.encoder(x).chunk(2, -1)
        scale = (0.5 * raw).exp()
        z = Normal(mean, scale).sample((NUM_MC,))
        log_q = log_normal(z, mean, scale)
        if isinstance(prior, MixturePrior):
            weights = torch.log_softmax(prior.logits, 0)
            scales = torch.nn.functional.softplus(prior.raw_scales) + prior.min_scale
            per_component = [
                weights[k] + log_normal(z, prior.means[k], scales[k])
                for k in range(prior.num_components)
            ]
        else:
            u_mean, u_raw = vae.encoder(prior.pseudo_inputs).chunk(2, -1)
            u_scale = (0.5 * u_raw).exp()
            per_component = [
                log_normal(z, u_mean[k], u_scale[k]) - math.log(prior.num_pseudo_inputs)
                for k in range(prior.num_pseudo_inputs)
            ]
        log_p = torch.logsumexp(torch.stack(per_component), 0)
        independent = (log_q - log_p).mean(0)
        stderr = (log_q - log_p).std(0) / math.sqrt(NUM_MC) + kl_terms.std(0) / math.sqrt(
            len(kl_terms)
        )
    assert ((kl_terms.mean(0) - independent).abs() < 4 * stderr).all(), (
        kl_terms.mean(0),
        independent,
    )


def test_standard_normal_prior_is_n01_on_the_models_device():
    prior = StandardNormalPrior()
    prior.setup(LATENT, SHAPE, encode=None)
    z = torch.randn(6, LATENT)
    torch.testing.assert_close(prior.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    assert prior.distribution() is prior.distribution()  # built once per device and dtype
    assert not prior.state_dict()  # nothing to checkpoint


def _test_batches(datamodule):
    datamodule.setup("test")
    device = torch.device("cpu")
    return [prepare_batch(datamodule, batch, device) for batch in datamodule.test_dataloader()]


RUNS = [
    pytest.param("digits", ["trainer.max_epochs=5"], id="digits"),
    pytest.param(
        "mnist",
        ["trainer.max_epochs=1", "trainer.limit_train_batches=150", "data.eval_batch_size=500"],
        id="mnist",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
@pytest.mark.parametrize(("data", "budget"), RUNS)
def test_learned_priors_train_and_iw_nll_is_below_the_negative_elbo(
    prior, data, budget, tmp_path, request
):
    """A short real run (sklearn's digits; MNIST in the slow group) for each learned prior: the
    bound improves over the untrained model's, the prior's parameters move, and the IW estimate
    lies below −ELBO."""
    size = (
        "model.prior.num_components=5" if prior == "mixture" else "model.prior.num_pseudo_inputs=20"
    )
    data_dir = request.getfixturevalue("mnist_data_dir") if data == "mnist" else tmp_path
    cfg = compose_config(
        [*FAST, f"data={data}", f"paths.data_dir={data_dir}", f"prior={prior}", size, *budget],
        tmp_path / "run",
    )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    L.seed_everything(0)
    module = build_module(cfg, datamodule.dims)
    batches = _test_batches(datamodule)[:2]

    def scores() -> dict:
        torch.manual_seed(0)
        model = module.model.eval()
        return summarize(evaluate_test_set(model, batches, num_samples=200, chunk_size=50))

    untrained = scores()
    initial = [p.detach().clone() for p in module.model.prior.parameters()]
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=cfg.trainer.max_epochs,
        limit_train_batches=cfg.trainer.get("limit_train_batches"),
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    trained = scores()
    assert math.isfinite(float(trainer.callback_metrics["val/elbo"]))
    assert any(
        not torch.equal(a, b) for a, b in zip(initial, module.model.prior.parameters(), strict=True)
    )
    assert trained["neg_elbo"] < untrained["neg_elbo"] - 1.0
    for summary in (untrained, trained):
        assert summary["iw_nll"] <= summary["neg_elbo"]


def test_standard_normal_kl_is_torch_distributions_normal_normal_kl_bit_for_bit():
    """The ELBO's per-dimension KL to N(0, I) takes a shortcut; it must give exactly the
    numbers of torch.distributions' closed form (the default run's numbers depend on it)."""
    prior = StandardNormalPrior()
    prior.setup(latent_dim=5, input_shape=(1, 4, 4), encode=None)
    generator = torch.Generator().manual_seed(0)
    loc = torch.randn(64, 5, generator=generator) * 3
    scale = torch.exp(torch.randn(64, 5, generator=generator))
    posterior = Normal(loc, scale)
    expected = torch.distributions.kl_divergence(posterior, prior.distribution().base_dist)
    assert torch.equal(prior.kl_per_dimension(posterior), expected)
    # and the generic path (any prior) is torch's KL itself
    assert torch.equal(Prior.kl_per_dimension(prior, posterior), expected)
