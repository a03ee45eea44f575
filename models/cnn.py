"""`snn_cnn`: a self-normalizing convolutional classifier (no batch normalization)."""

import keras

from models import common
from selu_zoo.layers import SELU, FeatureAlphaDropout, MirrorPadding2D

__all__ = ["PADDINGS", "DOWNSAMPLINGS", "build_snn_cnn"]

PADDINGS = ("reflect", "symmetric", "zeros")
DOWNSAMPLINGS = ("stride", "avg_pool")


def _conv_selu(h, filters, kernel_size, strides, padding, name):
    """Conv2D (LeCun normal, linear) -> SELU, with mirrored or zero borders."""
    if padding == "zeros":  # Keras' own zero padding
        conv_padding = "same"
    else:
        conv_padding = "valid"
        h = MirrorPadding2D((kernel_size - 1) // 2, mode=padding, name=f"pad_{name}")(h)
    h = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=conv_padding,
                            kernel_initializer="lecun_normal", name=f"conv_{name}")(h)
    return SELU(name=f"selu_{name}")(h)


def build_snn_cnn(config, info):
    """Stages of [Conv2D (LeCun normal, linear) -> SELU] x n, then global average pooling.

    Each stage ends with ``FeatureAlphaDropout`` (one mask per example and channel). Stages
    after the first start by halving the resolution: with ``downsample="stride"`` the first
    convolution has stride 2 (every output is a fresh 1/fan_in combination, so the fixed point
    holds); with ``"avg_pool"`` an ``AveragePooling2D(2)`` comes first (cheaper, but averaging
    k*k weakly correlated activations divides their variance by up to k*k). Borders are
    mirrored (``padding="reflect"``) by default: zero padding lowers the variance of border
    outputs, which on 8x8 images is most of them. Global average pooling and a linear head
    finish the model. No batch normalization.

    Args:
      config: ConfigDict with ``filters`` (tuple, one entry per stage), ``convs_per_stage``,
        ``kernel_size`` (odd), ``padding`` (one of `PADDINGS`), ``downsample`` (one of
        `DOWNSAMPLINGS`), ``dropout_rate``, ``seed`` and ``feature_shape`` (height, width,
        channels).
      info: the dataset's `DatasetInfo`; its ``feature_shape`` must be (height, width,
        channels).

    Returns:
      A `selu_zoo.tasks.Classifier` or `Regressor` named ``"snn_cnn"`` (by ``info.task``).

    Raises:
      ValueError: for a feature shape that is not (height, width, channels).
    """
    padding, downsample = config.padding, config.downsample
    inputs, h = common.standardized_input(config, info)
    if len(h.shape) != 4:
        raise ValueError(f"config.feature_shape must be (height, width, channels) for "
                         f"snn_cnn, got {tuple(h.shape[1:])}")
    seed = config.seed
    for s, filters in enumerate(config.filters):
        if s > 0 and downsample == "avg_pool":
            h = keras.layers.AveragePooling2D(2, padding="same", name=f"avg_pool_{s}")(h)
        for c in range(config.convs_per_stage):
            strides = 2 if (s > 0 and c == 0 and downsample == "stride") else 1
            h = _conv_selu(h, filters, config.kernel_size, strides, padding, f"{s}_{c}")
        if config.dropout_rate > 0:
            h = FeatureAlphaDropout(config.dropout_rate,
                                    seed=None if seed is None else seed + s,
                                    name=f"feature_alpha_dropout_{s}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="global_avg_pool")(h)
    return common.supervised_task(inputs, h, info, name="snn_cnn")
