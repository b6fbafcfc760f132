"""The VQ-VAE's codebook and quantised posterior (van den Oord et al. 2017, §3.1 and
Appendix A.1) against hand-derived numbers: the straight-through gradient, the EMA codebook
(one Lloyd step at γ = 0, the EMA formula at γ = 0.99), dead-code restarts, perplexity, and
what q(z|x) hands the VQ objective (the commitment term, the code histogram, the EMA step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch.distributions import Categorical

from vaelab.posteriors.codebook import EMACodebook, QuantizedPosterior, perplexity


def codebook(vectors: list[list[float]], decay: float, restart_below: float = 0.0) -> EMACodebook:
    book = EMACodebook(len(vectors), len(vectors[0]), decay, restart_below)
    book.vectors.copy_(torch.tensor(vectors))
    book.ema_sum.copy_(book.vectors)
    return book


def as_map(points: torch.Tensor) -> torch.Tensor:
    """[N, D] points as an encoder map [N, D, 1, 1] (one code per 'image')."""
    return points[:, :, None, None]


# -- the quantiser and its EMA codebook --------------------------------------------------
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


# -- q(z|x) and what it carries for the objective ---------------------------------------------
def test_quantized_posterior_carries_commitment_code_counts_and_the_codebook_step():
    book = codebook(TOY_CODES, decay=0.0)
    encoded = as_map(TOY_POINTS)
    posterior = QuantizedPosterior(encoded, book.quantize(encoded), book, commitment_cost=0.5)
    assert posterior.indices.flatten().tolist() == [0, 0, 1, 1, 1, 2]
    nearest = torch.tensor(TOY_CODES)[[0, 0, 1, 1, 1, 2]]
    torch.testing.assert_close(posterior.commitment(), (TOY_POINTS - nearest).pow(2).sum(1))
    assert posterior.code_counts().tolist() == [2, 3, 1]
    assert posterior.commitment_cost == 0.5
    assert posterior.trains_codebook
    torch.testing.assert_close(posterior.mean, nearest)
    assert posterior.log_prob(nearest).tolist() == [0.0] * 6
    posterior.update_codebook()  # γ = 0: the codes move to their clusters' means
    torch.testing.assert_close(book.vectors[1], TOY_POINTS[2:5].mean(0))
    frozen = QuantizedPosterior(encoded, book.quantize(encoded), book, 0.25, trains_codebook=False)
    assert not frozen.trains_codebook
