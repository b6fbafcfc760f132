"""vaelab.objectives.classification: the cross-entropy and error of the feature classifier's
objective, and its checks of the data's classes."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.baselines.feature_classifier import FeatureClassifier
from vaelab.errors import VaelabError
from vaelab.objectives.classification import Classification


def test_classification_objective_and_its_checks():
    model = FeatureClassifier((1, 8, 8), num_classes=3, feature_dim=4)
    objective = Classification()
    with pytest.raises(VaelabError, match="num_classes=3 but the data set has 10"):
        objective.check_data(model, {"num_classes": 10})
    with pytest.raises(VaelabError, match="has none"):
        objective.check_data(model, {"num_classes": None})
    with torch.no_grad():  # logits that favour class 0 whatever the image
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([math.log(2.0), 0.0, 0.0]))
    out = objective(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 2]))
    # softmax = (1/2, 1/4, 1/4): −log(1/2) for label 0, −log(1/4) for label 2 (misclassified)
    torch.testing.assert_close(out.terms["cross_entropy"], torch.tensor([math.log(2), math.log(4)]))
    assert out.terms["error"].tolist() == [0.0, 1.0]
    assert model.features(torch.rand(5, 1, 8, 8)).shape == (5, 4)
