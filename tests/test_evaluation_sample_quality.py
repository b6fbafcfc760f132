"""vaelab.evaluation's sample-quality metrics (fid, precision_recall, and the Inception features
behind them): closed forms, hand cases, and their behaviour on real digits (pixels here; the
MNIST feature classifier in tests/test_evaluation_feature_extractors.py)."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torchvision.transforms.functional import gaussian_blur

from vaelab.errors import VaelabError
from vaelab.evaluation.feature_extractors import InceptionFeatures
from vaelab.evaluation.fid import frechet_distance, gaussian_frechet_distance
from vaelab.evaluation.precision_recall import precision_recall

BLUR_SIGMAS = (0.5, 1.0, 2.0)


def _with_moments(num: int, mean: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    """``num`` points whose sample mean and (unbiased) covariance are exactly ``mean``, ``cov``."""
    points = torch.randn(num, len(mean), generator=torch.Generator().manual_seed(seed)).double()
    points -= points.mean(0)
    whitening = torch.linalg.cholesky(points.T @ points / (num - 1))
    white = torch.linalg.solve_triangular(whitening, points.T, upper=False).T
    return white @ torch.linalg.cholesky(cov).T + mean


def test_fid_equals_the_closed_form_between_two_gaussians():
    """N(0, I) against N(μ, Σ): FID = ‖μ‖² + Σ_i (1 − √λ_i(Σ)), here with a rotated Σ."""
    eigenvalues = torch.tensor([4.0, 1.0, 0.25], dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
    cov = rotation.double() @ torch.diag(eigenvalues) @ rotation.double().T
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    expected = float((mean**2).sum() + ((1 - eigenvalues.sqrt()) ** 2).sum())
    real = _with_moments(500, torch.zeros(3, dtype=torch.float64), torch.eye(3).double(), 0)
    generated = _with_moments(400, mean, cov, 1)
    assert frechet_distance(real, generated) == pytest.approx(expected, rel=1e-6)
    assert gaussian_frechet_distance(torch.zeros(3), torch.eye(3).double(), mean, cov) == (
        pytest.approx(expected, rel=1e-6)
    )
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)


def test_fid_refuses_mismatched_features():
    with pytest.raises(VaelabError, match="same number of columns"):
        frechet_distance(torch.zeros(4, 2), torch.zeros(4, 3))


def test_precision_recall_of_a_hand_case():
    """Real {0,…,4} on a line, k = 1: every real ball has radius 1. Generated {0.5, 10}: 0.5 is
    inside, 10 is not (precision 1/2); both generated balls have radius 9.5 and cover every
    real point (recall 1)."""
    real = torch.arange(5.0)[:, None]
    generated = torch.tensor([[0.5], [10.0]])
    scores = precision_recall(real, generated, k=1)
    assert scores.precision == 0.5
    assert scores.recall == 1.0


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8×8 digits in [0, 1], shuffled and split in halves."""
    images = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16
    images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))]
    half = len(images) // 2
    return images[:half], images[half:]


def _pixels(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)


def test_fid_and_precision_recall_on_real_digits(digits):
    real, other_real = digits
    noise = torch.rand(other_real.shape, generator=torch.Generator().manual_seed(0))
    same = frechet_distance(_pixels(real), _pixels(other_real))
    against_noise = frechet_distance(_pixels(real), _pixels(noise))
    assert same < 0.05 * against_noise
    blurred = [
        frechet_distance(_pixels(real), _pixels(gaussian_blur(other_real, 5, sigma)))
        for sigma in BLUR_SIGMAS
    ]
    assert same < blurred[0] < blurred[1] < blurred[2] < against_noise
    real_vs_real = precision_recall(_pixels(real), _pixels(other_real))
    assert real_vs_real.precision > 0.85
    assert real_vs_real.recall > 0.85
    real_vs_noise = precision_recall(_pixels(real), _pixels(noise))
    assert real_vs_noise.precision < 0.05
    assert real_vs_noise.recall < 0.05


def test_inception_weights_must_be_a_local_state_dict(tmp_path):
    with pytest.raises(VaelabError, match="not found"):
        InceptionFeatures(tmp_path / "missing.pt")
    damaged = tmp_path / "damaged.pt"
    torch.save({"conv.weight": torch.zeros(1)}, damaged)
    with pytest.raises(VaelabError, match="not a torchvision Inception-v3 state dict"):
        InceptionFeatures(damaged)


@pytest.mark.slow
def test_inception_features_from_a_local_state_dict(tmp_path):
    """A (randomly initialised) torchvision Inception-v3 saved as a state dict: the extractor
    loads it and gives the 2048 pool features of grey images resized to 299 × 299."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    network = inception_v3(weights=None, aux_logits=True, init_weights=True).eval()
    path = tmp_path / "inception.pt"
    torch.save(network.state_dict(), path)
    extractor = InceptionFeatures(path)
    images = torch.rand(2, 1, 28, 28)
    features = extractor(images)
    assert features.shape == (2, InceptionFeatures.num_features)
    resized = torch.nn.functional.interpolate(
        images.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear", align_corners=False
    )
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    network.fc = torch.nn.Identity()
    torch.testing.assert_close(features, network((resized - mean) / std))
