"""Activation functions by name, as the configs spell them."""

from __future__ import annotations

import typing
from typing import Literal

from torch import nn

#: the names a config may give (``model.net.activation``)
Activation = Literal["leaky_relu", "relu", "tanh", "softplus", "elu", "sigmoid"]
ACTIVATIONS = typing.get_args(Activation)


def make_activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """A fresh activation module; ``negative_slope`` is used by leaky ReLU only."""
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    factories = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "softplus": nn.Softplus,
        "elu": nn.ELU,
        "sigmoid": nn.Sigmoid,
    }
    if name not in factories:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return factories[name]()
