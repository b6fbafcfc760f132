"""RAE's loss (Ghosh et al. 2020, eq. 11) against hand computations: the code penalty, the
decoder's gradient penalty (RAE-GP) and RAE-L2's decoder-only weight decay."""

from __future__ import annotations

import torch
from torch import nn

from tests.linear_factor_model import LinearFactorModel, binary_patterns
from vaelab.objectives.regularised_autoencoder import RegularisedAutoencoderLoss
from vaelab.schedules.constant import ConstantBeta


def test_rae_gp_loss_is_reconstruction_code_penalty_and_hand_gradient_penalty():
    torch.manual_seed(0)
    model = LinearFactorModel(latent_dim=2)
    x = binary_patterns(6)
    objective = RegularisedAutoencoderLoss(0.5, "gradient_penalty", 0.1)
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    z = model.encode(x).mean
    logits = model.decoder(z)
    recon = nn.functional.binary_cross_entropy_with_logits(
        logits, x.flatten(1), reduction="none"
    ).sum(1)
    probabilities = torch.sigmoid(logits)
    # ∇_z Σ_i σ(Wz + b)_i = Wᵀ σ'(Wz + b)
    gradient = (probabilities * (1 - probabilities)) @ model.decoder.weight
    penalty = gradient.pow(2).sum(1)
    code = 0.5 * z.pow(2).sum(1)
    torch.testing.assert_close(out.terms["recon"], recon)
    torch.testing.assert_close(out.terms["code_penalty"], code)
    torch.testing.assert_close(out.terms["decoder_gradient_penalty"], penalty)
    torch.testing.assert_close(out.loss, recon + 0.5 * code + 0.1 * penalty)
    assert out.bound is None
    # the penalty trains the encoder too (through z), as eq. 11's ‖∇D(E(x))‖² does
    out.loss.sum().backward()
    assert model.encoder.weight.grad.abs().sum() > 0


def test_rae_l2_decays_the_decoders_weights_only():
    model = LinearFactorModel(latent_dim=2)
    objective = RegularisedAutoencoderLoss(1.0, "l2", 0.25)
    (group,) = objective.optimiser_groups(model)
    encoder_group, decoder_group = group.parameters
    assert {id(p) for p in decoder_group["params"]} == {id(p) for p in model.decoder.parameters()}
    assert decoder_group["weight_decay"] == 0.5  # ∇ λ‖θ‖² = 2λθ
    assert "weight_decay" not in encoder_group
    everything = {id(p) for p in encoder_group["params"]} | {id(p) for p in decoder_group["params"]}
    assert everything == {id(p) for p in model.parameters()}
    # one SGD step on a zero loss moves the decoder by −lr·2λθ and leaves the encoder alone
    optimizer = torch.optim.SGD(group.parameters, lr=0.1)
    encoder_before = model.encoder.weight.detach().clone()
    decoder_before = model.decoder.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(model.encoder.weight, encoder_before)
    torch.testing.assert_close(model.decoder.weight.detach(), decoder_before * (1 - 0.1 * 0.5))
    assert objective.term_names == ("recon", "code_penalty")
