"""Watching self-normalization during training: per-layer activation statistics on a probe batch."""

import math

import keras
import tensorflow as tf
from absl import logging

from selu_zoo import layers as selu_layers


def is_self_normalizing_output(layer):
    """Whether ``layer``'s output is a SELU activation that should sit at mean 0, variance 1.

    Args:
      layer: a Keras layer.

    Returns:
      True for `SELU` and `SELUDense` layers and for ``keras.layers.RNN`` wrappers of a
      `SELURNNCell`.
    """
    if isinstance(layer, (selu_layers.SELU, selu_layers.SELUDense)):
        return True
    cell_type = getattr(selu_layers, "SELURNNCell", None)
    return (cell_type is not None and isinstance(layer, keras.layers.RNN)
            and isinstance(layer.cell, cell_type))


def _walk(model):
    """Yields (path, layer) for every layer of ``model``, descending into nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for path, inner in _walk(layer):
                yield f"{layer.name}/{path}", inner
        else:
            yield layer.name, layer


def activation_statistics(model, inputs, select=is_self_normalizing_output):
    """Mean and variance of selected layers' outputs for one inference pass over ``inputs``.

    Runs ``model(inputs, training=False)`` eagerly once with each selected layer's ``call``
    wrapped to record its output (Keras has no forward hooks), then restores the layers.
    Nested functional models (a VAE's encoder and decoder) are included.

    Args:
      model: a built Keras model.
      inputs: one probe batch the model accepts.
      select: predicate choosing the layers to record.

    Returns:
      Dict mapping ``"<nested/path/>layer_name"`` to ``(mean, variance)`` floats, in model order.
    """
    recorded = {}
    wrapped = []
    for path, layer in _walk(model):
        if not select(layer):
            continue
        original = layer.call

        def recording_call(*args, _original=original, _path=path, **kwargs):
            outputs = _original(*args, **kwargs)
            first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            values = tf.cast(first, tf.float64)
            recorded[_path] = (float(tf.reduce_mean(values)),
                               float(tf.math.reduce_variance(values)))
            return outputs

        layer.call = recording_call
        wrapped.append(layer)
    try:
        model(inputs, training=False)
    finally:
        for layer in wrapped:
            del layer.call  # falls back to the class's method
    return recorded


class SelfNormalizationMonitor(keras.callbacks.Callback):
    """Logs per-layer activation mean/variance on a fixed probe batch and warns on drift.

    At the end of every epoch (and before training starts) the monitor runs the model in
    inference mode on ``probe_inputs``, logs each SELU layer's mean and variance with absl,
    writes them as TensorBoard scalars under ``self_normalization/`` when ``log_dir`` is given,
    and warns when a layer leaves ``|mean| <= mean_tolerance`` or
    ``|variance - 1| <= variance_tolerance``. Non-finite statistics are always reported.

    Args:
      probe_inputs: one batch of model inputs, fixed for the whole run.
      mean_tolerance: allowed absolute drift of the mean from 0.
      variance_tolerance: allowed absolute drift of the variance from 1.
      log_dir: optional folder for a TensorBoard summary writer.
    """

    def __init__(self, probe_inputs, mean_tolerance=0.25, variance_tolerance=0.5, log_dir=None):
        super().__init__()
        self.probe_inputs = probe_inputs
        self.mean_tolerance = float(mean_tolerance)
        self.variance_tolerance = float(variance_tolerance)
        self.log_dir = log_dir
        self._writer = None
        self.history = []  # one dict per measurement, for tests and notebooks

    def _measure(self, step):
        statistics = activation_statistics(self.model, self.probe_inputs)
        self.history.append(statistics)
        drifted = []
        for name, (mean, variance) in statistics.items():
            logging.info("self-normalization %s: mean %.4f variance %.4f", name, mean, variance)
            if not (math.isfinite(mean) and math.isfinite(variance)
                    and abs(mean) <= self.mean_tolerance
                    and abs(variance - 1.0) <= self.variance_tolerance):
                drifted.append(f"{name} (mean {mean:.3g}, variance {variance:.3g})")
        if drifted:
            logging.warning(
                "Activations left the self-normalizing regime (|mean| <= %g, |variance - 1| "
                "<= %g) at step %s: %s", self.mean_tolerance, self.variance_tolerance, step,
                "; ".join(drifted))
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self.log_dir))
            with self._writer.as_default(step=step):
                for name, (mean, variance) in statistics.items():
                    tf.summary.scalar(f"self_normalization/{name}/mean", mean)
                    tf.summary.scalar(f"self_normalization/{name}/variance", variance)
            self._writer.flush()
        return statistics

    def on_train_begin(self, logs=None):
        self._measure(step=0)

    def on_epoch_end(self, epoch, logs=None):
        self._measure(step=epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

