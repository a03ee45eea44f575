"""Pieces every model family shares: dtype policies, the standardizing input, SELU stacks, heads."""

import contextlib

import keras
import numpy as np

from selu_zoo import tasks
from selu_zoo.layers import Clip, SELUDense

__all__ = ["dtype_policy", "standardized_input", "dense_stack", "supervised_task"]


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


def standardized_input(config, info, name="features"):
    """The model input and its standardization.

    The input has the dataset's feature shape (raw features). A float32
    ``keras.layers.Normalization`` named ``"standardize"`` holds the train split's
    per-feature mean and variance (zero variances replaced by 1), so the saved model
    standardizes by itself. With ``config.clip_standardized`` set (a float c), a `Clip`
    layer named ``"clip_standardized"`` limits the standardized values to [-c, c]: a
    feature that is nearly constant in training can otherwise standardize to hundreds.

    Args:
      config: the model config (``clip_standardized`` is read).
      info: the dataset's `DatasetInfo` (``feature_shape``, ``mean``, ``variance``).
      name: the input's name.

    Returns:
      ``(inputs, standardized)``: the `keras.Input` and the tensor the body starts from.
    """
    shape = tuple(int(d) for d in info.feature_shape)
    inputs = keras.Input(shape, name=name)
    mean = np.broadcast_to(np.asarray(info.mean, np.float64), shape)
    variance = np.broadcast_to(_safe_variance(info.variance), shape)
    h = keras.layers.Normalization(axis=tuple(range(1, len(shape) + 1)), mean=mean,
                                   variance=variance, dtype="float32", name="standardize")(inputs)
    clip = config.get("clip_standardized", None)
    if clip:
        h = Clip(-float(clip), float(clip), dtype="float32", name="clip_standardized")(h)
    return inputs, h


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


def supervised_task(inputs, representation, info, name):
    """The task for a dataset's labels on top of a representation of the inputs.

    Args:
      inputs: the `keras.Input`.
      representation: the backbone's output tensor, shape ``(batch, units)``.
      info: the dataset's `DatasetInfo`: ``task`` picks a `selu_zoo.tasks.Classifier`
        (with ``num_classes`` and ``label_names``) or a `Regressor` (with the train
        split's target mean and standard deviation).
      name: the model's name; the backbone is ``<name>_backbone``.

    Returns:
      The task model.
    """
    backbone = keras.Model(inputs, representation, name=f"{name}_backbone")
    if info.task == "classification":
        return tasks.Classifier(backbone, info.num_classes, label_names=info.label_names,
                                name=name)
    return tasks.Regressor(backbone, target_mean=info.label_mean,
                           target_std=float(np.sqrt(info.label_variance)) or 1.0, name=name)
