"""log I_v(κ) and A_d(κ) against scipy (small κ), the large-κ asymptotic series and autograd."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import special

from vaelab.utils.bessel import log_bessel_iv, mean_resultant_length


@pytest.mark.parametrize("order", [0.5, 1.0, 4.0, 24.0])
def test_log_bessel_equals_log_of_scipys_iv_where_it_is_finite(order):
    kappa = torch.tensor([0.1, 1.0, 10.0, 300.0], dtype=torch.float64)
    expected = torch.log(torch.from_numpy(special.iv(order, kappa.numpy())))
    torch.testing.assert_close(log_bessel_iv(order, kappa), expected, rtol=1e-12, atol=1e-12)


def test_log_bessel_stays_finite_beyond_float64s_range_and_matches_the_asymptotic_series():
    """I_v(κ) overflows float64 past κ ≈ 713; log I_v(κ) = κ − ½ log 2πκ + log(1 − (μ − 1)/8κ
    + (μ − 1)(μ − 9)/(2! (8κ)²) − …), μ = 4v² (Abramowitz & Stegun 9.7.1)."""
    order, kappa = 4.0, torch.tensor([5e3, 1e5], dtype=torch.float64)
    mu = 4 * order**2
    series = (
        1
        - (mu - 1) / (8 * kappa)
        + (mu - 1) * (mu - 9) / (2 * (8 * kappa) ** 2)
        - (mu - 1) * (mu - 9) * (mu - 25) / (6 * (8 * kappa) ** 3)
    )
    expected = kappa - 0.5 * torch.log(2 * math.pi * kappa) + torch.log(series)
    assert torch.isinf(torch.from_numpy(special.iv(order, kappa.numpy()))).all()
    torch.testing.assert_close(log_bessel_iv(order, kappa), expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("order", [0.5, 4.0, 19.0])
def test_log_bessel_gradient_passes_gradcheck(order):
    kappa = torch.tensor([0.3, 2.0, 50.0, 2000.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda k: log_bessel_iv(order, k), (kappa,))


def test_mean_resultant_length_on_the_circle_and_the_two_sphere_in_closed_form():
    """A_2(κ) = I_1/I_0 (scipy's i1e/i0e); A_3(κ) = coth κ − 1/κ (Langevin)."""
    kappa = torch.tensor([0.5, 3.0, 150.0], dtype=torch.float64)
    circle = torch.from_numpy(special.i1e(kappa.numpy()) / special.i0e(kappa.numpy()))
    torch.testing.assert_close(mean_resultant_length(2, kappa), circle, rtol=1e-12, atol=0)
    langevin = 1 / torch.tanh(kappa) - 1 / kappa
    torch.testing.assert_close(mean_resultant_length(3, kappa), langevin, rtol=1e-12, atol=0)
