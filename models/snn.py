"""`snn`: the self-normalizing MLP of Klambauer et al. (2017)."""

import keras

from models import common

__all__ = ["build_snn"]


def build_snn(config, info):
    """Standardize -> flatten -> ``depth`` x SELUDense(width, alpha dropout) -> linear head.

    Args:
      config: ConfigDict with ``depth``, ``width``, ``dropout_rate``, ``seed``, ``residual``
        and ``clip_standardized``.
      info: the dataset's `DatasetInfo`.

    Returns:
      A `selu_zoo.tasks.Classifier` or `Regressor` named ``"snn"`` (by ``info.task``).
    """
    inputs, h = common.standardized_input(config, info)
    if len(h.shape) > 2:
        h = keras.layers.Flatten(name="flatten")(h)
    h = common.dense_stack(h, config.depth, config.width, config.dropout_rate, config.seed,
                           residual=config.residual, name="selu_dense")
    return common.supervised_task(inputs, h, info, name="snn")
