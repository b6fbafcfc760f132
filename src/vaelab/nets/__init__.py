"""Encoder/decoder networks. Each family is one builder that reads shapes from the data."""

from vaelab.nets.networks import EncoderDecoder

__all__ = ["EncoderDecoder"]
