"""The VQ-VAE (van den Oord et al. 2017) against hand-derived numbers: the straight-through
gradient, the EMA codebook (one Lloyd step at γ = 0, the EMA formula at γ = 0.99), dead-code
restarts, perplexity, the gated PixelCNN's causality, and the two stages through the model
interface."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch.distributions import Categorical

from vaelab.errors import VaelabError
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.models.interface import MissingCapability
from vaelab.models.vae import VAE
from vaelab.models.vqvae import VQVAE, EMACodebook, perplexity
from vaelab.module import LatentVariableModule
from vaelab.nets.mlp import mlp
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.nets.residual_conv import residual_conv
from vaelab.objectives.vq import VectorQuantization
from vaelab.schedules.constant import ConstantBeta

#: scikit-learn's digits: 8×8 images, a 2×2 code grid
SHAPE = (1, 8, 8)
TINY_NET = functools.partial(residual_conv, hidden=8, residual_blocks=1, residual_hidden=4)
TINY_PRIOR = functools.partial(GatedPixelCNN, channels=8, layers=2, kernel_size=3)


def tiny_vqvae(**options) -> VQVAE:
    settings = {"net": TINY_NET, "input_shape": SHAPE, "num_codes": 6, "embedding_dim": 3}
    return VQVAE(**{**settings, **options})


def images(num: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.rand(num, *SHAPE, generator=torch.Generator().manual_seed(seed)).round()


def codebook(vectors: list[list[float]], decay: float, restart_below: float = 0.0) -> EMACodebook:
    book = EMACodebook(len(vectors), len(vectors[0]), decay, restart_below)
    book.vectors.copy_(torch.tensor(vectors))
    book.ema_sum.copy_(book.vectors)
    return book


def as_map(points: torch.Tensor) -> torch.Tensor:
    """[N, D] points as an encoder map [N, D, 1, 1] (one code per 'image')."""
    return points[:, :, None, None]


# -- the quantiser --------------------------------------------------------------------------
def test_straight_through_gradient_is_the_decoder_gradient_plus_the_commitment_gradient():
    """L = Σ c ⊙ z_st + β ‖z_e − sg(e)‖²  ⇒  ∂L/∂z_e = c + 2β (z_e − e) (§3.1, eq. 3)."""
    book = codebook([[0.0, 0.0], [1.0, 1.0], [-2.0, 3.0]], decay=0.99)
    encoded = as_map(torch.tensor([[0.2, -0.1], [0.9, 1.4], [-1.0, 2.0]])).requires_grad_()
    quantized = book.quantize(encoded)
    assert quantized.indices.flatten().tolist() == [0, 1, 2]
    torch.testing.assert_close(quantized.straight_through, quantized.codes)  # z_q's value
    weights = torch.randn(encoded.shape, generator=torch.Generator().manual_seed(0))
    beta = 0.25
    loss = (weights * quantized.straight_through).sum() + beta * (
        encoded - quantized.codes.detach()
    ).pow(2).sum()
    loss.backward()
    expected = weights + 2 * beta * (encoded.detach() - book.vectors[[0, 1, 2]][:, :, None, None])
    torch.testing.assert_close(encoded.grad, expected)


TOY_POINTS = torch.tensor([[0.0, 0.1], [0.3, -0.2], [2.0, 2.2], [2.4, 1.6], [2.2, 2.1], [5.0, 0.0]])
TOY_CODES = [[0.0, 0.0], [2.0, 2.0], [4.0, 0.5]]


def test_ema_update_with_decay_0_is_one_lloyd_step_of_k_means():
    book = codebook(TOY_CODES, decay=0.0)
    book.update(as_map(TOY_POINTS), book.quantize(as_map(TOY_POINTS)).indices)
    lloyd = KMeans(3, init=np.array(TOY_CODES), n_init=1, max_iter=1, algorithm="lloyd")
    lloyd.fit(TOY_POINTS.numpy())
    np.testing.assert_allclose(book.vectors.numpy(), lloyd.cluster_centers_, rtol=1e-6)
    # and by hand: the means of {0, 1}, {2, 3, 4}, {5}
    torch.testing.assert_close(book.vectors[1], TOY_POINTS[2:5].mean(0))


def test_ema_update_with_decay_099_follows_the_formula_of_appendix_a1():
    decay = 0.99
    book = codebook(TOY_CODES, decay=decay)
    book.update(as_map(TOY_POINTS), book.quantize(as_map(TOY_POINTS)).indices)
    clusters = [TOY_POINTS[0:2], TOY_POINTS[2:5], TOY_POINTS[5:6]]
    for k, (start, members) in enumerate(zip(TOY_CODES, clusters, strict=True)):
        count = decay * 1.0 + (1 - decay) * len(members)  # N_k starts at 1, m_k at e_k
        total = decay * torch.tensor(start) + (1 - decay) * members.sum(0)
        assert book.ema_count[k].item() == pytest.approx(count)
        torch.testing.assert_close(book.ema_sum[k], total)
        torch.testing.assert_close(book.vectors[k], total / count)


def test_unused_code_keeps_its_vector_and_dead_codes_restart_at_encoder_outputs():
    far_codes = [*TOY_CODES, [100.0, 100.0]]
    lloyd = codebook(far_codes, decay=0.0)
    lloyd.update(as_map(TOY_POINTS), lloyd.quantize(as_map(TOY_POINTS)).indices)
    assert lloyd.vectors[3].tolist() == [100.0, 100.0]  # no restarts: an empty cluster stays
    book = codebook(far_codes, decay=0.5, restart_below=0.6)
    torch.manual_seed(0)
    book.update(as_map(TOY_POINTS), book.quantize(as_map(TOY_POINTS)).indices)
    # N_3 = 0.5 · 1 + 0.5 · 0 < 0.6: code 3 is dead and now sits on one of the points
    distances = torch.cdist(book.vectors[3:], TOY_POINTS)
    assert distances.min().item() == 0.0
    assert book.ema_count[3].item() == 1.0
    torch.testing.assert_close(book.ema_sum[3], book.vectors[3])
    used = codebook(TOY_CODES, decay=0.5, restart_below=0.6)  # every code used: none moves
    used.update(as_map(TOY_POINTS), used.quantize(as_map(TOY_POINTS)).indices)
    assert (torch.cdist(used.vectors, TOY_POINTS).min(1).values > 0).all()


def test_perplexity_is_exp_of_the_code_histogram_entropy():
    counts = torch.tensor([5, 0, 3, 1, 0, 7])
    expected = Categorical(probs=counts.float() / counts.sum()).entropy().exp()
    torch.testing.assert_close(perplexity(counts), expected)
    assert perplexity(torch.full((8,), 4)).item() == pytest.approx(8.0)
    assert perplexity(torch.tensor([0, 9, 0])).item() == pytest.approx(1.0)


# -- the PixelCNN ---------------------------------------------------------------------------
def test_pixelcnn_outputs_depend_only_on_earlier_positions_and_on_all_of_them():
    """∂ logits(i, j) / ∂ input(i', j') is zero for (i', j') at or after (i, j) in raster order,
    and (no blind spot: four layers of 3×3 reach a 4×4 grid) non-zero for every earlier one."""
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=5, channels=6, layers=4, kernel_size=3)
    rows, cols = 4, 4
    features = torch.randn(1, 6, rows, cols, requires_grad=True)
    logits = net.logits_of_features(features)
    # the blind-spot check looks before the head, whose ReLUs may zero a gradient by chance
    context = net.context(features)
    for row in range(rows):
        for col in range(cols):
            position = row * cols + col
            (grad,) = torch.autograd.grad(logits[0, :, row, col].sum(), features, retain_graph=True)
            assert (grad[0].abs().sum(0).flatten()[position:] == 0).all(), (row, col)
            (grad,) = torch.autograd.grad(
                context[0, :, row, col].sum(), features, retain_graph=True
            )
            reach = grad[0].abs().sum(0).flatten()
            assert (reach[position:] == 0).all(), (row, col)
            assert (reach[:position] > 0).all(), (row, col)


def test_pixelcnn_log_prob_is_the_sum_of_its_conditionals_and_samples_are_codes():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=4, channels=6, layers=2, kernel_size=3)
    symbols = torch.randint(4, (3, 2, 3))
    conditionals = Categorical(logits=net(symbols).permute(0, 2, 3, 1))
    torch.testing.assert_close(net.log_prob(symbols), conditionals.log_prob(symbols).sum((1, 2)))
    drawn = net.sample(7, (2, 3), torch.Generator().manual_seed(1))
    assert drawn.shape == (7, 2, 3)
    assert drawn.min() >= 0
    assert drawn.max() < 4


# -- the model and its objective ------------------------------------------------------------
def test_stage1_bound_is_recon_plus_the_uniform_prior_and_eval_agrees():
    torch.manual_seed(0)
    model = tiny_vqvae().eval()
    x = images()
    objective = VectorQuantization().eval()
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    grid_positions = 4  # (8/4) × (8/4)
    torch.testing.assert_close(out.terms["kl"], torch.full((5,), grid_positions * math.log(6)))
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))
    torch.testing.assert_close(out.loss, out.terms["recon"] + 0.25 * out.terms["commitment"])
    assert model.latent_dim == 3 * grid_positions
    log_w = model.log_weights(x, num_samples=3)
    torch.testing.assert_close(log_w, out.bound.expand(3, -1))
    # vaelab-eval's ELBO (Monte-Carlo KL against the model's prior) and IW-NLL see the same
    summary = summarize(
        evaluate_test_set(model, [(x, torch.zeros(5))], num_samples=4, chunk_size=2, elbo_samples=2)
    )
    assert summary["elbo"] == pytest.approx(out.bound.mean().item(), rel=1e-5)
    assert summary["iw_nll"] == pytest.approx(-out.bound.mean().item(), rel=1e-5)
    assert summary["latent_dim"] == model.latent_dim
    with pytest.raises(MissingCapability, match="train the PixelCNN prior"):
        model.sample(2)


def test_codebook_moves_in_training_steps_only():
    torch.manual_seed(0)
    model = tiny_vqvae()
    objective = VectorQuantization()
    before = model.quantizer.vectors.clone()
    objective.eval()(model, images(), None, ConstantBeta(1.0), 0)
    assert torch.equal(model.quantizer.vectors, before)
    objective.train()(model, images(), None, ConstantBeta(1.0), 0)
    assert not torch.equal(model.quantizer.vectors, before)
    assert {name for name, _ in model.named_buffers()} >= {
        "quantizer.vectors",
        "quantizer.ema_count",
        "quantizer.ema_sum",
    }


def _stage1_checkpoint(tmp_path, model: VQVAE):
    path = tmp_path / "stage1.ckpt"
    module = LatentVariableModule(model, optimizer=torch.optim.Adam)
    torch.save({"state_dict": module.state_dict()}, path)
    return path


def test_stage2_loads_and_freezes_stage1_and_trains_only_the_prior(tmp_path):
    torch.manual_seed(0)
    stage1 = tiny_vqvae()
    path = _stage1_checkpoint(tmp_path, stage1)
    torch.manual_seed(1)  # other random weights, overwritten by the checkpoint's
    stage2 = tiny_vqvae(prior_net=TINY_PRIOR, stage1_checkpoint=str(path))
    for name, tensor in stage1.state_dict().items():
        if not name.startswith("prior."):
            torch.testing.assert_close(stage2.state_dict()[name], tensor, msg=name)
    module = LatentVariableModule(
        stage2, objective=stage2.default_objective(), optimizer=torch.optim.Adam
    )
    trained = {
        id(p) for group in module.configure_optimizers().param_groups for p in group["params"]
    }
    assert trained == {id(p) for p in stage2.prior.parameters()}
    x = images()
    out = module(x)
    torch.testing.assert_close(out.loss, -out.bound)  # stage 2 minimises −ELBO
    kl_by_hand = -stage2.prior.net.log_prob(stage2.encode(x).indices)
    torch.testing.assert_close(out.terms["kl"], kl_by_hand)
    codebook_before = stage2.quantizer.vectors.clone()
    module.train()
    module(x)
    assert torch.equal(stage2.quantizer.vectors, codebook_before)  # frozen: no EMA step
    samples = stage2.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, *SHAPE)
    assert ((samples >= 0) & (samples <= 1)).all()


def test_bad_vqvae_settings_are_refused_with_the_fix(tmp_path):
    with pytest.raises(VaelabError, match="stage1_ckpt"):
        tiny_vqvae(prior_net=TINY_PRIOR)
    with pytest.raises(VaelabError, match="multiples of 4"):
        tiny_vqvae(input_shape=(1, 10, 8))
    path = _stage1_checkpoint(tmp_path, tiny_vqvae(num_codes=7))
    with pytest.raises(VaelabError, match="is not a checkpoint of this VQ-VAE"):
        tiny_vqvae(prior_net=TINY_PRIOR, stage1_checkpoint=str(path))
    vae = VAE(net=functools.partial(mlp, hidden_dims=[4]), latent_dim=2, input_shape=SHAPE)
    with pytest.raises(VaelabError, match="trains a VQ-VAE"):
        VectorQuantization().setup(vae, ConstantBeta(1.0), {})
