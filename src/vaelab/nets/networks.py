"""The named output of a network builder."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class EncoderDecoder:
    """An encoder x → posterior parameters and a decoder z → likelihood parameters."""

    encoder: nn.Module
    decoder: nn.Module
