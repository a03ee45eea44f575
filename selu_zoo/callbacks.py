"""Keras callbacks of a selu_zoo run: the console line, self-normalization, best model, pictures.

* `EpochLogger`: one console line per epoch (metrics, seconds, the self-normalization verdict).
* `SelfNormalizationMonitor`: per-layer activation statistics on a probe batch, to TensorBoard,
  and a verdict against the domain of the paper's Theorem 1 (`selu_zoo.theory`).
* `BestModelCheckpoint`: the best model of this run as ``.keras``, written atomically.
* `HistoryFile`: every finished epoch's metrics, kept across resumes.
* `TaskPictures`: the task's pictures (`selu_zoo.tasks.Task.pictures`) in TensorBoard.
* `TimedCallbacks`: the callbacks of a run, with each epoch's seconds by part.
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
    return _moments(probe)(inputs)


def _moments(probe, writer=None, jit_compile=False):
    """A function ``(inputs, step=0) -> {layer: (mean, variance)}`` (floats) of ``probe``'s
    outputs, computed in one compiled call (with XLA if ``jit_compile``) and written to
    ``writer`` at ``step`` in another."""
    if probe is None:
        return lambda inputs, step=0: {}
    call = (lambda x: probe(x, training=False)) if isinstance(probe, keras.Model) else probe
    names = []

    @tf.function(jit_compile=jit_compile)
    def moments(inputs):
        outputs = call(inputs)
        names[:] = list(outputs)
        values = [tf.cast(outputs[name], tf.float64) for name in names]
        return tf.stack([tf.stack([tf.reduce_mean(v), tf.math.reduce_variance(v)])
                         for v in values]) if values else tf.zeros((0, 2), tf.float64)

    @tf.function
    def write(stacked, step):
        with writer.as_default(step=step):
            for index, name in enumerate(names):
                tf.summary.scalar(f"self_normalization/{name}/mean", stacked[index, 0])
                tf.summary.scalar(f"self_normalization/{name}/variance", stacked[index, 1])

    def measure(inputs, step=0):
        stacked = moments(tf.nest.map_structure(tf.convert_to_tensor, inputs))
        if writer is not None and names:
            write(stacked, tf.constant(step, tf.int64))
        return {name: (float(mean), float(variance))
                for name, (mean, variance) in zip(names, stacked.numpy())}

    return measure


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
            if self.log_dir is not None:
                self._writer = tf.summary.create_file_writer(str(self.log_dir))
            self._probe = _moments(self.model.activation_probe()
                                   if isinstance(self.model, tasks.Task)
                                   else tasks.layer_probe(self.model), self._writer,
                                   jit_compile=bool(getattr(self.model, "jit_compile", False)))
        statistics = self._probe(self.probe_inputs, step)
        self.history.append(statistics)
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
            self._writer, self._probe = None, None


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
    """Keeps this run's best model (``.keras``) by ``monitor``.

    An epoch that improves ``monitor`` is written at once, or with ``deferred=True`` kept in
    memory until `write` (call it on a `TimedCallbacks` budget, and before every resume
    checkpoint, so the best model on disk is never older than the state a run resumes
    from). The file is written to a temporary sibling renamed into place (a run killed while
    saving leaves the previous best), and ``<filepath>.json`` records the value, the epoch
    and ``run_id``. A resumed run (the same ``run_id``) continues from that record; a record of
    another run is ignored, so the best model always belongs to the current run.

    Args:
      filepath: destination ending in ``.keras`` (any tf.io.gfile path).
      run_id: the run's identifier.
      monitor: the logs key to watch, e.g. ``"val_loss"``.
      mode: ``"min"`` or ``"max"``.
      deferred: keep an improvement in memory until `write`.

    Attributes:
      best: the best value so far (None before the first finite one).
      best_epoch: its epoch (1-based).
    """

    def __init__(self, filepath, run_id, monitor="val_loss", mode="min", deferred=False):
        super().__init__()
        if not str(filepath).endswith(".keras"):
            raise ValueError(f"filepath must end in .keras, got {filepath!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.filepath, self.run_id = str(filepath), run_id
        self.monitor, self.mode, self.deferred = monitor, mode, deferred
        self.best, self.best_epoch = None, None
        self._unwritten, self._epoch = None, None

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
        self._epoch = epoch + 1
        value = (logs or {}).get(self.monitor)
        if value is None or not self._improved(float(value)):
            return
        previous = self.best, self.best_epoch
        self.best, self.best_epoch = float(value), epoch + 1
        # Not deferred, it is written now: the weights need no copy.
        self._unwritten = self.model.get_weights() if self.deferred else ()
        if not self.deferred:
            try:
                self.write()
            except BaseException:
                self.best, self.best_epoch = previous
                raise

    def write(self):
        """Saves the best weights kept since the last `write`, if any; returns the path."""
        if self._unwritten is None:  # nothing new
            return self.filepath
        current = None if self.best_epoch == self._epoch else self.model.get_weights()
        if current is not None:
            self.model.set_weights(self._unwritten)
        try:
            save_model(self.model, self.filepath)
        finally:
            if current is not None:
                self.model.set_weights(current)
        self._unwritten = None
        storage.write_json(self.record_path, {"monitor": self.monitor, "value": self.best,
                                              "epoch": self.best_epoch, "run_id": self.run_id})
        return self.filepath


class HistoryFile(keras.callbacks.Callback):
    """Keeps every finished epoch's metrics in a JSON file, across resumes of the run.

    Each epoch is written at once, or with ``deferred=True`` kept in memory until `write`
    (call it on a `TimedCallbacks` budget, before every resume checkpoint and at the end).

    Args:
      path: the file (any tf.io.gfile path).
      run_id: the run's identifier; a file of another run is replaced.
      initial_epoch: the epochs a resumed run had finished; later entries (of epochs that
        were redone) are dropped.
      deferred: keep new epochs in memory until `write`.

    Attributes:
      history: metric name -> one value per epoch, epoch 1 first (as Keras' ``History``).
    """

    def __init__(self, path, run_id, initial_epoch=0, deferred=False):
        super().__init__()
        self.path, self.run_id, self.deferred = str(path), run_id, deferred
        self.epochs, self._written = [], 0
        if initial_epoch and storage.exists(self.path):
            record = storage.read_json(self.path, fix="delete it to forget the history")
            if record.get("run_id") == run_id:
                self.epochs = [e for e in record.get("epochs", []) if e["epoch"] <= initial_epoch]
                self._written = len(self.epochs)

    @property
    def history(self):
        names = sorted({name for entry in self.epochs for name in entry} - {"epoch"})
        return {name: [entry.get(name) for entry in self.epochs] for name in names}

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()
                                                   if isinstance(v, (int, float, np.floating))}})
        if not self.deferred:
            self.write()

    def write(self):
        """Writes the epochs kept since the last `write`, if any; returns the path."""
        if self._written != len(self.epochs):
            storage.write_json(self.path, {"run_id": self.run_id, "epochs": self.epochs})
            self._written = len(self.epochs)
        return self.path


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


class TimedCallbacks(keras.callbacks.CallbackList):
    """A ``CallbackList`` that times every epoch and keeps deferrable bookkeeping in budget.

    Each epoch is timed by part: its train steps, its validation and each callback's
    ``on_epoch_end``. A callback given a budget (a fraction) runs its ``on_epoch_end`` in the
    first epoch, then only while its seconds so far, plus its last cost, stay within that
    fraction of the epochs' seconds since the first (whose tracing is not counted). Pass the
    list as ``callbacks`` to Keras ``fit`` or to `selu_zoo.distribute.train`.

    Args:
      callbacks: the Keras callbacks.
      model: the model they serve.
      budgets: optional ``{callback: fraction}`` of the deferrable callbacks.
      **params: passed to every callback's ``set_params``.

    Attributes:
      seconds: one dict per epoch of this run: ``epoch`` (1-based), ``train``, ``validation``
        and ``<callback name>`` in seconds (absent when a deferred callback did not run), and
        ``total``, from the epoch's start to the end of its last callback.
    """

    def __init__(self, callbacks, model, budgets=None, **params):
        super().__init__(callbacks, add_history=True, model=model, **params)
        self.seconds = []
        self._marks, self._steps, self._spent, self._last = {}, 0.0, {}, {}
        budgets = budgets or {}
        for callback in self.callbacks:
            callback.on_epoch_end = self._timed(callback, budgets.get(callback))

    def _timed(self, callback, budget):
        name = getattr(callback, "name", None) or type(callback).__name__
        method = callback.on_epoch_end

        def timed(epoch, logs=None):
            if budget is not None and name in self._last and (
                    self._spent[name] + self._last[name] > budget * self._steps):
                return
            start = time.perf_counter()
            try:
                method(epoch, logs)
            finally:
                self._last[name] = time.perf_counter() - start
                self._spent[name] = self._spent.get(name, 0.0) + self._last[name]
                self.seconds[-1][name] = self._last[name]
        return timed

    def on_epoch_begin(self, epoch, logs=None):
        self._marks = {"begin": time.perf_counter()}
        super().on_epoch_begin(epoch, logs)

    def on_test_begin(self, logs=None):
        if "begin" in self._marks:  # fit's validation, not a later evaluate
            self._marks.setdefault("validation", time.perf_counter())
        super().on_test_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        steps_end = self._marks.get("validation", now)
        self.seconds.append({"epoch": epoch + 1, "train": steps_end - self._marks["begin"],
                             "validation": now - steps_end})
        super().on_epoch_end(epoch, logs)
        self.seconds[-1]["total"] = time.perf_counter() - self._marks.pop("begin")
        if len(self.seconds) > 1:
            self._steps += self.seconds[-1]["total"]


class EpochEnd(keras.callbacks.Callback):
    """Calls ``function(epoch)`` (0-based) at the end of every epoch; ``name`` names it in
    `TimedCallbacks.seconds`."""

    def __init__(self, name, function):
        super().__init__()
        self.name, self.function = name, function

    def on_epoch_end(self, epoch, logs=None):
        self.function(epoch)
