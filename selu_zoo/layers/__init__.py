"""Keras layers for self-normalizing networks, all registered under the ``selu_zoo`` package."""

from selu_zoo.layers.activation import SELU
from selu_zoo.layers.clip import Clip
from selu_zoo.layers.dense import SELUDense
from selu_zoo.layers.dropout import AlphaDropout, FeatureAlphaDropout
from selu_zoo.layers.padding import MirrorPadding2D
from selu_zoo.layers.recurrent import SELURNNCell
from selu_zoo.layers.vae import VAESampling

__all__ = ["SELU", "SELUDense", "AlphaDropout", "FeatureAlphaDropout", "MirrorPadding2D",
           "SELURNNCell", "VAESampling", "Clip"]
