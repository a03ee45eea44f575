"""`snn`: the self-normalizing MLP of Klambauer et al. (2017)."""

import keras

from models import common

__all__ = ["build_snn"]


def build_snn(config, info):
    """Standardize -> flatten -> ``depth`` x SELUDense(width, alpha dropout) -> linear head.

    Args:
      config: ConfigDict with ``depth``, ``width``, ``dropout_rate``, ``seed`` and optionally
        ``residual`` (bool) and ``feature_shape``.
      info: the dataset's `DatasetInfo`.

    Returns:
      A functional `keras.Model` named ``"snn"`` with input ``"features"`` and one output,
      from the Dense layer ``"logits"`` (or ``"prediction"`` for regression).
    """
    inputs, h = common.standardized_input(config, info)
    if len(h.shape) > 2:
        h = keras.layers.Flatten(name="flatten")(h)
    h = common.dense_stack(h, config.depth, config.width, config.dropout_rate, config.seed,
                           residual=config.get("residual", False), name="selu_dense")
    return keras.Model(inputs, common.output_head(h, info), name="snn")
