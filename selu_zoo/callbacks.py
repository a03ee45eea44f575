"""Keras callbacks of a selu_zoo run: the console line, self-normalization, best model, pictures.

* `EpochLogger`: one console line per epoch (metrics, seconds, the self-normalization verdict).
* `SelfNormalizationMonitor`: per-layer activation statistics on a probe batch, to TensorBoard,
  and a verdict against the domain of the paper's Theorem 1 (`selu_zoo.theory`).
* `BestModelCheckpoint`: the best model of this run as ``.keras``, written atomically.
* `HistoryFile`: every finished epoch's metrics, kept across resumes.
* `TaskPictures`: the task's pictures (`selu_zoo.tasks.Task.pictures`) in TensorBoard.
"""

import math
import posixpath
import time
import zipfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from selu_zoo import storage, tasks, theory


def activation_statistics(model, inputs, select=None):
    """Mean and variance of the self-normalizing layers' outputs on one batch (inference mode).

    Args:
      model: a `selu_zoo.tasks.Task` (its `activation_probe`), or any functional model whose
        own layers are searched.
      inputs: one batch the model accepts.
      select: for a non-task model, a predicate choosing the layers (default:
        `selu_zoo.tasks.is_self_normalizing`).

    Returns:
      Dict ``layer name -> (mean, variance)`` as floats, in model order; empty if the model
      has no such layer.
    """
    probe = model.activation_probe() if isinstance(model, tasks.Task) and select is None \
        else tasks.layer_probe(model, select or tasks.is_self_normalizing)
    return _moments(probe, inputs)


def _moments(probe, inputs):
    if probe is None:
        return {}
    outputs = probe(inputs) if not isinstance(probe, keras.Model) else probe(inputs,
                                                                              training=False)
    result = {}
    for name, value in outputs.items():
        values = tf.cast(value, tf.float64)
        result[name] = (float(tf.reduce_mean(values)), float(tf.math.reduce_variance(values)))
    return result


class SelfNormalizationMonitor(keras.callbacks.Callback):
    """Per-layer activation mean and variance on a fixed probe batch, with a verdict.

    Before training and after every epoch the model runs in inference mode on
    ``probe_inputs``; each self-normalizing layer's mean and variance go to TensorBoard
    (``self_normalization/<layer>/mean`` and ``/variance``) when ``log_dir`` is given. The
    `verdict` says how many layers lie in the domain of the paper's Theorem 1
    (`selu_zoo.theory.in_theorem1_domain`: mean in [-0.1, 0.1], variance in [0.8, 1.5]),
    where the moment map contracts to the fixed point, and names the layer farthest out.

    Args:
      probe_inputs: one batch of model inputs, fixed for the whole run.
      log_dir: optional TensorBoard folder.

    Attributes:
      history: one ``{layer: (mean, variance)}`` dict per measurement.
    """

    def __init__(self, probe_inputs, log_dir=None):
        super().__init__()
        self.probe_inputs = probe_inputs
        self.log_dir = log_dir
        self.history = []
        self._probe = None
        self._writer = None

    def measure(self, step):
        """Measures now and writes the statistics at ``step``; returns them."""
        if self._probe is None:
            self._probe = (self.model.activation_probe() if isinstance(self.model, tasks.Task)
                           else tasks.layer_probe(self.model))
        statistics = _moments(self._probe, self.probe_inputs)
        self.history.append(statistics)
        if self.log_dir is not None and statistics:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self.log_dir))
            with self._writer.as_default(step=step):
                for name, (mean, variance) in statistics.items():
                    tf.summary.scalar(f"self_normalization/{name}/mean", mean)
                    tf.summary.scalar(f"self_normalization/{name}/variance", variance)
            self._writer.flush()
        return statistics

    def verdict(self):
        """One phrase on the last measurement, e.g. ``"self-normalized: 8/8 SELU layers in
        Theorem 1's domain"``; empty before the first measurement or without SELU layers."""
        if not self.history or not self.history[-1]:
            return ""
        statistics = self.history[-1]
        outside = {name: moments for name, moments in statistics.items()
                   if not theory.in_theorem1_domain(*moments)}
        inside = len(statistics) - len(outside)
        text = f"{inside}/{len(statistics)} SELU layers in Theorem 1's domain"
        if not outside:
            return "self-normalized: " + text
        name, (mean, variance) = max(outside.items(), key=lambda item: _distance(*item[1]))
        return f"{text}; farthest out {name} (mean {mean:.2f}, variance {variance:.2f})"

    def on_train_begin(self, logs=None):
        self.measure(step=0)

    def on_epoch_end(self, epoch, logs=None):
        self.measure(step=epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _distance(mean, variance):
    """How far (mean, variance) lies outside Theorem 1's domain (inf for NaN)."""
    if not (math.isfinite(mean) and math.isfinite(variance)):
        return math.inf
    low_m, high_m = theory.THEOREM1_MEAN
    low_v, high_v = theory.THEOREM1_VARIANCE
    return max(low_m - mean, mean - high_m, 0) + max(low_v - variance, variance - high_v, 0)


class EpochLogger(keras.callbacks.Callback):
    """Logs one line per epoch: its metrics, its seconds and the self-normalization verdict.

    Args:
      epochs: the run's total number of epochs (for "epoch 3/30").
      monitor: an optional `SelfNormalizationMonitor` placed before this callback.

    Attributes:
      epoch: the last epoch started (1-based), for "interrupted at epoch N".
    """

    def __init__(self, epochs, monitor=None):
        super().__init__()
        self.epochs = epochs
        self.monitor = monitor
        self.epoch = 0
        self._start = None

    def on_train_begin(self, logs=None):
        if self.monitor is not None and self.monitor.verdict():
            logging.info("before training: %s", self.monitor.verdict())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in (logs or {}).items()
                            if isinstance(value, (int, float, np.floating)))
        seconds = time.perf_counter() - (self._start or time.perf_counter())
        verdict = self.monitor.verdict() if self.monitor is not None else ""
        logging.info("epoch %d/%d: %s (%.1f s)%s", epoch + 1, self.epochs, metrics, seconds,
                     f"; {verdict}" if verdict else "")


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves this run's best model (``.keras``) whenever ``monitor`` improves.

    The file is written to a temporary sibling and renamed into place (a run killed while
    saving leaves the previous best), and ``<filepath>.json`` records the value, the epoch
    and ``run_id``. A resumed run (the same ``run_id``) continues from that record; a record
    of another run is ignored, so the best model always belongs to the current run.

    Args:
      filepath: destination ending in ``.keras`` (any tf.io.gfile path).
      run_id: the run's identifier.
      monitor: the logs key to watch, e.g. ``"val_loss"``.
      mode: ``"min"`` or ``"max"``.

    Attributes:
      best: the best value so far (None before the first finite one).
      best_epoch: its epoch (1-based).
    """

    def __init__(self, filepath, run_id, monitor="val_loss", mode="min"):
        super().__init__()
        if not str(filepath).endswith(".keras"):
            raise ValueError(f"filepath must end in .keras, got {filepath!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.filepath, self.run_id = str(filepath), run_id
        self.monitor, self.mode = monitor, mode
        self.best, self.best_epoch = None, None

    @property
    def record_path(self):
        return f"{self.filepath}.json"

    def on_train_begin(self, logs=None):
        if not (storage.exists(self.record_path) and storage.exists(self.filepath)):
            return
        record = storage.read_json(self.record_path, fix=(
            f"delete it and {self.filepath} to forget the best model so far"))
        if record.get("run_id") == self.run_id and record.get("monitor") == self.monitor:
            with storage.reported("read", self.filepath), \
                    tf.io.gfile.GFile(self.filepath, "rb") as f:
                readable = zipfile.is_zipfile(f)
            if not readable:  # found now, not when it is loaded after training
                raise storage.CorruptFileError(
                    f"{self.filepath} is corrupt (not a .keras archive); delete it and "
                    f"{self.record_path} to forget this run's best model, or pass --restart")
            self.best, self.best_epoch = record["value"], record["epoch"]

    def _improved(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not self._improved(float(value)):
            return
        save_model(self.model, self.filepath)
        self.best, self.best_epoch = float(value), epoch + 1
        storage.write_json(self.record_path, {"monitor": self.monitor, "value": self.best,
                                              "epoch": self.best_epoch, "run_id": self.run_id})


class HistoryFile(keras.callbacks.Callback):
    """Keeps every finished epoch's metrics in a JSON file, across resumes of the run.

    Args:
      path: the file (any tf.io.gfile path).
      run_id: the run's identifier; a file of another run is replaced.
      initial_epoch: the epochs a resumed run had finished; later entries (of epochs that
        were redone) are dropped.

    Attributes:
      history: metric name -> one value per epoch, epoch 1 first (as Keras' ``History``).
    """

    def __init__(self, path, run_id, initial_epoch=0):
        super().__init__()
        self.path, self.run_id = str(path), run_id
        self.epochs = []
        if initial_epoch and storage.exists(self.path):
            record = storage.read_json(self.path, fix="delete it to forget the history")
            if record.get("run_id") == run_id:
                self.epochs = [e for e in record.get("epochs", []) if e["epoch"] <= initial_epoch]

    @property
    def history(self):
        names = sorted({name for entry in self.epochs for name in entry} - {"epoch"})
        return {name: [entry.get(name) for entry in self.epochs] for name in names}

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()
                                                   if isinstance(v, (int, float, np.floating))}})
        storage.write_json(self.path, {"run_id": self.run_id, "epochs": self.epochs})


def save_model(model, path):
    """Saves ``model`` as a ``.keras`` file atomically (temporary sibling, then rename).

    Args:
      model: a Keras model.
      path: destination ending in ``.keras`` (any tf.io.gfile path).

    Returns:
      ``path``.

    Raises:
      storage.StorageError: if it cannot be written (the previous file stays).
    """
    temp = storage.temporary_sibling(path) + ".keras"
    storage.makedirs(posixpath.dirname(str(path)) or ".")
    try:
        with storage.reported("write", path):
            model.save(temp)
        storage.rename(temp, path, overwrite=True)
    except BaseException:
        storage.remove(temp)
        raise
    return path


class TaskPictures(keras.callbacks.Callback):
    """Writes the task's pictures (`selu_zoo.tasks.Task.pictures`) to TensorBoard every epoch.

    Args:
      examples: NumPy features of the examples to draw (fixed for the run).
      log_dir: TensorBoard folder.
      seed: seed of the pictures' random draws (fixed, so epochs compare).
    """

    def __init__(self, examples, log_dir, seed=0):
        super().__init__()
        self.examples, self.log_dir, self.seed = examples, str(log_dir), seed
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        pictures = self.model.pictures(self.examples, self.seed)
        if not pictures:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default(step=epoch + 1):
            for name, image in pictures.items():
                tf.summary.image(name, image[None])
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
