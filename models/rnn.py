"""`snn_rnn`: a self-normalizing recurrent classifier on `selu_zoo.layers.SELURNNCell`."""

import keras

from models import common
from selu_zoo.layers import AlphaDropout, SELURNNCell

__all__ = ["build_snn_rnn"]


def build_snn_rnn(config, info):
    """Standardize -> [alpha dropout (one mask per sequence) -> RNN(SELURNNCell)] x depth -> head.

    The input dropout mask has ``noise_shape=(None, 1, None)``: the same features are dropped
    at every time step of a sequence, as variational RNN dropout does. All recurrent layers
    but the last return sequences; the last one's final state feeds the linear head.

    Args:
      config: ConfigDict with ``units``, ``depth`` (recurrent layers), ``init_scale`` (the
        fan-in variance scale of both kernels: 1.0 is LeCun normal; 0.5 keeps the state at
        mean 0, variance 1 when inputs are standardized), ``dropout_rate``,
        ``unroll`` (bool; needs the fixed sequence length of ``feature_shape``, and TFLite
        needs it), ``seed`` and ``feature_shape`` (time steps, features).
      info: the dataset's `DatasetInfo`; its ``feature_shape`` must be (time steps,
        features).

    Returns:
      A `selu_zoo.tasks.Classifier` or `Regressor` named ``"snn_rnn"`` (by ``info.task``).

    Raises:
      ValueError: if the feature shape is not (time steps, features).
    """
    inputs, h = common.standardized_input(config, info)
    if len(h.shape) != 3:
        raise ValueError(f"config.feature_shape must be (time steps, features) for snn_rnn, "
                         f"got {tuple(h.shape[1:])}")
    seed = config.seed
    initializer = keras.initializers.VarianceScaling(
        config.init_scale, mode="fan_in", distribution="truncated_normal")
    for i in range(config.depth):
        if config.dropout_rate > 0:
            h = AlphaDropout(config.dropout_rate, noise_shape=(None, 1, None),
                             seed=None if seed is None else seed + i,
                             name=f"sequence_alpha_dropout_{i}")(h)
        cell = SELURNNCell(config.units, kernel_initializer=initializer,
                           recurrent_initializer=initializer, name=f"selu_rnn_cell_{i}")
        h = keras.layers.RNN(cell,
                             return_sequences=i < config.depth - 1,
                             unroll=bool(config.unroll), name=f"selu_rnn_{i}")(h)
    return common.supervised_task(inputs, h, info, name="snn_rnn")
