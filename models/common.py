"""Pieces every model family shares: the standardizing input, dtype policies, output heads."""

import contextlib
import math

import keras
import numpy as np

from selu_zoo.layers import Clip, SELUDense

__all__ = ["dtype_policy", "standardized_input", "body_shape", "output_head", "dense_stack"]


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy to ``name`` inside the block, then restores it.

    Layers read the global policy when they are constructed, so building a model inside the
    block gives it that policy; layers that must stay float32 say so with ``dtype=``.

    Args:
      name: a policy name such as ``"mixed_bfloat16"``, or None to keep the current one.

    Yields:
      None.
    """
    if not name:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _safe_variance(variance):
    """Replaces zero, negative or non-finite variances by 1 (constant features stay finite)."""
    variance = np.asarray(variance, dtype=np.float64)
    return np.where(np.isfinite(variance) & (variance > 1e-12), variance, 1.0)


def body_shape(config, info):
    """The feature shape the model body works on.

    ``config.feature_shape`` when set (it must hold as many values as the dataset's
    ``info.feature_shape``), else ``info.feature_shape``.

    Args:
      config: the model config.
      info: the dataset's `DatasetInfo`.

    Returns:
      A tuple of ints.

    Raises:
      ValueError: if the two shapes hold different numbers of values.
    """
    data_shape = tuple(int(d) for d in info.feature_shape)
    wanted = config.get("feature_shape", None)
    if wanted is None:
        return data_shape
    wanted = tuple(int(d) for d in wanted)
    if math.prod(wanted) != math.prod(data_shape):
        raise ValueError(f"config.feature_shape {wanted} does not hold the "
                         f"{math.prod(data_shape)} values of the dataset's feature_shape "
                         f"{data_shape}")
    return wanted


def standardized_input(config, info, name="features"):
    """The model input and its standardization, reshaped for the body.

    The input has the dataset's shape (``info.feature_shape``, raw features). A float32
    ``keras.layers.Normalization`` named ``"standardize"`` holds the training split's
    per-feature mean and variance (zero variances replaced by 1), so the saved model
    standardizes by itself. With ``config.clip_standardized`` set (a float c), a `Clip`
    layer named ``"clip_standardized"`` limits the standardized values to [-c, c]: a feature
    that is nearly constant in training can otherwise standardize to hundreds. When ``config.feature_shape`` differs from the dataset's shape, a
    ``Reshape`` named ``"to_body_shape"`` follows.

    Args:
      config: the model config (``feature_shape`` and ``clip_standardized`` are read).
      info: the dataset's `DatasetInfo` (``feature_shape``, ``mean``, ``variance``).
      name: the input's name.

    Returns:
      ``(inputs, standardized)``: the `keras.Input` and the tensor the body starts from.
    """
    data_shape = tuple(int(d) for d in info.feature_shape)
    inputs = keras.Input(data_shape, name=name)
    mean = np.broadcast_to(np.asarray(info.mean, np.float64), data_shape)
    variance = np.broadcast_to(_safe_variance(info.variance), data_shape)
    axis = tuple(range(1, len(data_shape) + 1))
    h = keras.layers.Normalization(axis=axis, mean=mean, variance=variance, dtype="float32",
                                   name="standardize")(inputs)
    clip = config.get("clip_standardized", None)
    if clip:
        h = Clip(-float(clip), float(clip), dtype="float32", name="clip_standardized")(h)
    target = body_shape(config, info)
    if target != data_shape:
        h = keras.layers.Reshape(target, name="to_body_shape")(h)
    return inputs, h


def output_head(h, info):
    """The final linear layer: ``"logits"`` for classification, ``"prediction"`` for regression.

    Float32 whatever the dtype policy (losses and exported probabilities need it), LeCun
    normal like the rest of the network.

    Args:
      h: the body's output, shape ``(batch, features)``.
      info: the dataset's `DatasetInfo` (``task``, ``num_classes``).

    Returns:
      The output tensor: ``(batch, num_classes)`` logits or ``(batch, 1)`` predictions.

    Raises:
      ValueError: for an unknown task or a classification task without ``num_classes``.
    """
    if info.task == "classification":
        if not info.num_classes or info.num_classes < 2:
            raise ValueError(f"classification needs num_classes >= 2, got {info.num_classes!r}")
        units, name = int(info.num_classes), "logits"
    elif info.task == "regression":
        units, name = 1, "prediction"
    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {info.task!r}")
    return keras.layers.Dense(units, kernel_initializer="lecun_normal", dtype="float32",
                              name=name)(h)


def dense_stack(h, depth, width, dropout_rate, seed, residual=False, name="dense"):
    """``depth`` SELUDense blocks, optionally residual with a 1/sqrt(2) rescale.

    With ``residual``, every block after the first computes ``(h + block(h)) / sqrt(2)``:
    the sum of two unit-variance signals has variance 2, and the rescale brings it back to
    the fixed point (built-in ``Add`` and ``Rescaling`` layers, nothing custom).

    Args:
      h: input tensor of shape ``(batch, features)``.
      depth: number of SELUDense blocks, an int >= 0.
      width: units of each block.
      dropout_rate: alpha dropout rate of each block.
      seed: int base seed; block i's dropout uses ``seed + i`` (None for unseeded).
      residual: whether to add the scaled skip connections.
      name: prefix of the layer names (``{name}_{i}``).

    Returns:
      The output tensor.
    """
    for i in range(depth):
        block = SELUDense(width, dropout_rate=dropout_rate,
                          seed=None if seed is None else seed + i, name=f"{name}_{i}")(h)
        if residual and i > 0:
            block = keras.layers.Add(name=f"{name}_{i}_add")([h, block])
            block = keras.layers.Rescaling(2 ** -0.5, name=f"{name}_{i}_rescale")(block)
        h = block
    return h
