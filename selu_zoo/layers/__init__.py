"""Keras layers for self-normalizing networks, all registered under the ``selu_zoo`` package."""

from selu_zoo.layers.activation import SELU
from selu_zoo.layers.dense import SELUDense
from selu_zoo.layers.dropout import AlphaDropout, FeatureAlphaDropout

__all__ = ["SELU", "SELUDense", "AlphaDropout", "FeatureAlphaDropout"]
