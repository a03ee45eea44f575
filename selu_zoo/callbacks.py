"""Watching self-normalization during training: per-layer activation statistics on a probe batch."""

import json
import math
import os

import keras
import numpy as np
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



def _atomic_write_text(path, text):
    """Writes ``text`` to ``path`` through a temporary sibling and ``os.replace``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model (``.keras``) whenever ``monitor`` improves, atomically and resumably.

    Unlike ``keras.callbacks.ModelCheckpoint(save_best_only=True)``, the file is written to a
    temporary sibling and renamed into place, so a run killed mid-save never leaves a
    truncated checkpoint, and the best value so far is kept in ``<filepath>.json`` so that a
    resumed run (``BackupAndRestore``) does not overwrite a better checkpoint with a worse one.

    Args:
      filepath: destination ending in ``.keras``.
      monitor: the logs key to watch, e.g. ``"val_loss"``.
      mode: ``"min"`` or ``"max"``.
    """

    def __init__(self, filepath, monitor="val_loss", mode="min"):
        super().__init__()
        if not str(filepath).endswith(".keras"):
            raise ValueError(f"filepath must end in .keras, got {filepath!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.filepath = str(filepath)
        self.monitor = monitor
        self.mode = mode
        self.best = None
        self.best_epoch = None

    @property
    def _record_path(self):
        return f"{self.filepath}.json"

    def on_train_begin(self, logs=None):
        if os.path.exists(self._record_path) and os.path.exists(self.filepath):
            with open(self._record_path, encoding="utf-8") as f:
                record = json.load(f)
            if record.get("monitor") == self.monitor:
                self.best, self.best_epoch = record["value"], record["epoch"]

    def _improved(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            logging.warning("BestModelCheckpoint: %r is not in the logs (%s); nothing saved",
                            self.monitor, ", ".join(sorted(logs or {})))
            return
        value = float(value)
        if not self._improved(value):
            return
        directory = os.path.dirname(self.filepath) or "."
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(self.filepath)}")
        self.model.save(tmp)
        os.replace(tmp, self.filepath)
        self.best, self.best_epoch = value, epoch + 1
        _atomic_write_text(self._record_path, json.dumps(
            {"monitor": self.monitor, "value": value, "epoch": epoch + 1}))
        logging.info("epoch %d: %s improved to %.5g, saved %s", epoch + 1, self.monitor, value,
                     self.filepath)


def image_grid(images, columns):
    """Tiles images of shape ``(n, h, w)`` or ``(n, h, w, c)`` in [0, 1] into one uint8 image.

    Args:
      images: array of images with values in [0, 1].
      columns: number of images per row.

    Returns:
      A ``(rows * h, columns * w, c)`` uint8 array (c = 1 for grey images).
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, h, w, c), np.float32)
    padded[:n] = images
    grid = padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4)
    return np.round(np.clip(grid.reshape(rows * h, columns * w, c), 0, 1) * 255).astype(np.uint8)


def vae_images(model, probe_inputs, noise, image_shape):
    """Reconstructions of ``probe_inputs`` and decodings of ``noise`` as images in [0, 1].

    Uses the exported ``encode`` and ``decode`` endpoints (`selu_zoo.export.describe`), so it
    works on any model with the zoo's VAE layout, and shows exactly what serving returns.

    Args:
      model: the VAE.
      probe_inputs: a batch of inputs.
      noise: a batch of latent vectors.
      image_shape: shape of one image, e.g. ``(8, 8)``.

    Returns:
      Tuple ``(originals, reconstructions, samples)`` of float arrays shaped ``(n, *image_shape)``.
    """
    from selu_zoo.export import describe  # noqa: PLC0415  (export imports the TFLite tooling)

    signatures = describe(model)
    encode, decode = signatures.endpoint("encode").fn, signatures.endpoint("decode").fn
    z_mean = encode(tf.convert_to_tensor(probe_inputs, tf.float32))["z_mean"]
    reconstructions = decode(z_mean)["x_mean"]
    samples = decode(tf.convert_to_tensor(noise, tf.float32))["x_mean"]

    def as_images(x):
        return np.reshape(np.asarray(x, np.float32), (-1, *image_shape))

    return as_images(probe_inputs), as_images(reconstructions), as_images(samples)


class VAEImageLogger(keras.callbacks.Callback):
    """Writes VAE reconstructions and samples of fixed inputs/noise to TensorBoard each epoch.

    Args:
      probe_inputs: a fixed batch of inputs to reconstruct.
      noise: a fixed batch of latent vectors to decode.
      image_shape: shape of one image, e.g. ``(8, 8)``.
      log_dir: TensorBoard folder.
    """

    def __init__(self, probe_inputs, noise, image_shape, log_dir):
        super().__init__()
        self.probe_inputs, self.noise = probe_inputs, noise
        self.image_shape, self.log_dir = tuple(image_shape), str(log_dir)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        originals, reconstructions, samples = vae_images(
            self.model, self.probe_inputs, self.noise, self.image_shape)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        columns = len(originals)
        with self._writer.as_default(step=epoch + 1):
            tf.summary.image("vae/reconstructions", image_grid(
                np.concatenate([originals, reconstructions]), columns)[None])
            tf.summary.image("vae/samples", image_grid(samples, columns)[None])
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
