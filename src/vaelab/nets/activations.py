"""Activation functions by name, as the configs spell them."""

from __future__ import annotations

import typing
from typing import Literal

from torch import nn

#: the names a config may give (``model.net.activation``)
Activation = Literal["leaky_relu", "relu", "tanh", "softplus", "elu", "sigmoid"]
ACTIVATIONS = typing.get_args(Activation)


def make_activation(
    name: str, negative_slope: float = 0.01, after_linear: bool = False
) -> nn.Module:
    """A fresh activation module; ``negative_slope`` is used by leaky ReLU only.

    ``after_linear``: the activation follows a linear layer, whose backward does not read its
    output, so a leaky ReLU (slope ≥ 0) may overwrite it. The same values and gradients; its
    backward then reads the sign of its output (which the next layer keeps anyway) instead of
    a mask of its input: under ``module.compile=true`` a saved boolean mask costs more to
    write on a CPU than the activation itself."""
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope, inplace=after_linear and negative_slope >= 0)
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
