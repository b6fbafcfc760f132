"""vaelab.plots.pictures: class names from the dataset for the pictures' labels, and the most
active latent dimensions traversed first, categorical variables swept category by category."""

from __future__ import annotations

import functools

import torch
from torchvision.utils import make_grid

from vaelab.data.fashion_mnist import FashionMNISTDataModule
from vaelab.data.mnist import MNISTDataModule
from vaelab.models.discrete import DiscreteVAE
from vaelab.nets.mlp import mlp
from vaelab.plots.pictures import dataset_class_names, discrete_traversal_grid, traversal_dims
from vaelab.posteriors.categorical import CategoricalPosterior
from vaelab.priors.categorical import CategoricalPrior


def test_class_names_come_from_the_dataset():
    assert dataset_class_names(FashionMNISTDataModule)[:2] == ["T-shirt/top", "Trouser"]
    assert dataset_class_names(MNISTDataModule) == [str(d) for d in range(10)]
    assert dataset_class_names(object()) is None


def test_traversals_show_the_most_active_dimensions_first():
    activity = torch.tensor([0.0, 2.0, 0.001, 0.5, 1.0])
    assert traversal_dims(activity, 5, 3) == [1, 4, 3]
    assert traversal_dims(None, 32, 10) == list(range(10))


def test_traversals_of_a_joint_code_sweep_only_its_continuous_dimensions():
    activity = torch.tensor([0.1, 0.3, 0.9, 0.8, 0.0])  # dims 2-4: a one-hot variable
    assert traversal_dims(activity, 5, 3, among=[0, 1]) == [1, 0]


def test_discrete_traversals_set_each_variable_to_each_category_the_others_at_their_mode():
    """Two variables of 3 categories after 1 Gaussian number: row n, column k decodes the code
    whose variable n is category k, the other variable at its argmax, the Gaussian kept."""
    model = DiscreteVAE(
        net=functools.partial(mlp, hidden_dims=[8]),
        num_variables=2,
        input_shape=(1, 4, 4),
        posterior=CategoricalPosterior(num_categories=3, continuous_dim=1),
        prior=CategoricalPrior(),
    ).eval()
    code = torch.tensor([0.7, 0.2, 0.5, 0.3, 0.1, 0.1, 0.8])  # probabilities: modes 1 and 2
    grid = discrete_traversal_grid(model, code)
    expected = []
    for variable in range(2):
        for category in range(3):
            z = torch.tensor([0.7, 0, 1, 0, 0, 0, 1])
            z[1 + 3 * variable : 4 + 3 * variable] = torch.eye(3)[category]
            expected.append(z)
    images = model.decode(torch.stack(expected)).mean.clamp(0, 1)
    assert torch.allclose(grid, make_grid(images, nrow=3, pad_value=1.0))
