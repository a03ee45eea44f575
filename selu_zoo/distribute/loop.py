"""A distributed custom training loop: Keras ``fit``'s work under any ``tf.distribute`` strategy.

Keras 3.15 ``fit`` fails under ``MultiWorkerMirroredStrategy`` and with XLA on several
replicas (`selu_zoo.distribute.strategies.uses_keras_fit`); `train` does the same work with
``strategy.run``:

- each replica computes ``model.compute_loss`` on its contiguous slice of the global batch
  (`selu_zoo.distribute.inputs.distribute_batches`); Keras divides that loss by
  ``num_replicas_in_sync`` and the optimizer sums the gradients over the replicas, so one
  step applies the gradient of the mean loss over the global batch, as on one device.
  **The learning rate is not scaled with the number of replicas**: the global batch is the
  config's ``batch_size`` however many replicas there are; if you raise it to feed more
  replicas, scale the learning rate yourself (linearly for SGD, with a warm-up; roughly by
  the square root for Adam);
- the loss and the compiled metrics are averaged over the epoch and over the validation set
  (weighted by example counts, so uneven last batches count correctly);
- after every epoch the state is saved with a `selu_zoo.resume.ResumeCheckpoint` (every
  worker saves: it is collective); the caller restores it and passes ``initial_epoch``;
- Keras callbacks get ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` (with the
  ``val_`` metrics) and ``on_train_end``; pass the ones that write files on the chief only.

The model must be built and compiled inside ``strategy.scope()``.
"""

import dataclasses
import math
import time

import keras
import tensorflow as tf
from absl import logging

from selu_zoo.distribute import inputs


class NonFiniteLossError(RuntimeError):
    """The epoch's training loss became NaN or infinite (the epoch is not checkpointed)."""


@dataclasses.dataclass
class LoopResult:
    """What `train` returns.

    Attributes:
      history: metric name -> one value per epoch trained in this run (as Keras'
        ``History.history``).
      initial_epoch: the number of epochs a restored checkpoint had finished (0 for a fresh run).
      epochs: the number of epochs finished at the end.
      train_seconds: per epoch of this run, the seconds of its training steps (without
        validation, checkpoints and callbacks); the first includes tracing.
    """

    history: dict
    initial_epoch: int
    epochs: int
    train_seconds: list = dataclasses.field(default_factory=list)


class _Steps:
    """The replicated train and test steps and the metric bookkeeping of one model."""

    def __init__(self, model, strategy, jit_compile, steps_per_execution, validation_data=None):
        self.model = model
        self.strategy = strategy
        self.steps_per_execution = steps_per_execution
        with strategy.scope():
            self.loss_tracker = keras.metrics.Mean(name="loss")
        compute = self._compute_gradients
        self._gradients = tf.function(compute, jit_compile=True) if jit_compile else compute
        self.train_function = tf.function(self._train_steps)
        # A signature with unknown batch sizes: one trace for full, partial and the empty
        # batches a worker gets when the others still have data (traced with a static batch
        # of 0, Keras' loss reduction would keep a rank-1 empty loss and fail to add the
        # model's own losses to it).
        self.test_function = None if validation_data is None else tf.function(
            self._test_step, input_signature=[validation_data.element_spec])
        self._vote_function = tf.function(self._votes)
        self._results_function = tf.function(self._read_metrics)

    def _compute_gradients(self, x, y, sample_weight):
        model = self.model
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                      training=True)
            scaled = model.optimizer.scale_loss(loss)
        return loss, tape.gradient(scaled, model.trainable_variables), y_pred

    def _track(self, x, y, y_pred, sample_weight, loss):
        # compute_loss divided the loss by the replica count; the tracker wants the local mean,
        # weighted by the local batch size (a Mean with SUM-aggregated variables).
        # An empty batch (evaluation's end on some replicas) gives NaN for batch means such as
        # a VAE's KL term; it must weigh nothing.
        size = tf.shape(tf.nest.flatten(x)[0])[0]
        local_mean = loss * tf.cast(self.strategy.num_replicas_in_sync, loss.dtype)
        self.loss_tracker.update_state(tf.where(size > 0, local_mean, tf.zeros_like(local_mean)),
                                       sample_weight=size)
        self.model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _replica_train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        loss, gradients, y_pred = self._gradients(x, y, sample_weight)
        self.model.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        self._track(x, y, y_pred, sample_weight, loss)

    def _train_steps(self, iterator):
        if self.steps_per_execution == 1:  # no graph loop around a single step (as Keras)
            self.strategy.run(self._replica_train_step, args=(next(iterator),))
            return
        for _ in tf.range(self.steps_per_execution):
            self.strategy.run(self._replica_train_step, args=(next(iterator),))

    def _replica_test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self.model(x, training=False)
        loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                       training=False)
        self._track(x, y, y_pred, sample_weight, loss)

    def _test_step(self, data):
        self.strategy.run(self._replica_test_step, args=(data,))

    def _votes(self, flag):
        votes = self.strategy.run(lambda: tf.cast(flag, tf.int32))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)

    def any_worker(self, flag):
        """Whether ``flag`` is true on any worker, on every worker (collective: call on all)."""
        return int(self._vote_function(tf.constant(bool(flag)))) > 0

    def metrics(self):
        return [self.loss_tracker] + [m for m in self.model.metrics if m.name != "loss"]

    def reset(self):
        for metric in self.metrics():
            metric.reset_state()

    def _read_metrics(self):
        values = {}
        for metric in self.metrics():
            result = metric.result()
            values.update(result if isinstance(result, dict) else {metric.name: result})
        return values

    def results(self):
        """Every metric's value over all replicas and workers (collective: call on all)."""
        return {name: float(value) for name, value in self._results_function().items()}


def _build(model, strategy, batches):
    """Creates the compiled loss and metric variables under the strategy, outside replicas.

    Variables cannot be created inside ``strategy.run``; one call of the loss and the
    metrics on two examples, in the cross-replica context, creates them (and the metrics
    are reset afterwards).
    """
    with strategy.scope():
        first = tf.nest.map_structure(lambda t: t[:2], next(iter(batches.take(1))))
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(first)
        y_pred = model(x, training=False)
        model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                           training=False)
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        for metric in model.metrics:
            metric.reset_state()


def _format(logs):
    return " ".join(f"{name} {value:.4g}" for name, value in logs.items())


def train(model, strategy, train_batches, *, global_batch_size, epochs, steps_per_epoch,
          initial_epoch=0, resume=None, validation_batches=None, callbacks=None,
          jit_compile=False, steps_per_execution=1):
    """Trains ``model`` under ``strategy`` with a custom loop from ``initial_epoch`` on.

    Every worker of a multi-worker cluster calls this with the same arguments except
    ``callbacks`` (pass file-writing callbacks on the chief only).

    Args:
      model: a Keras model built and compiled inside ``strategy.scope()``.
      strategy: a ``tf.distribute.Strategy`` (any: default, mirrored, multi-worker).
      train_batches: a ``tf.data.Dataset`` of full global batches of ``(x, y)`` or
        ``(x, y, sample_weight)``, at least ``steps_per_epoch`` for each epoch to train,
        the same on every worker (e.g. `selu_zoo.datasets.Dataset.batches` with
        ``drop_remainder=True``).
      global_batch_size: examples per step over all replicas; a multiple of
        ``strategy.num_replicas_in_sync``.
      epochs: the total number of epochs.
      steps_per_epoch: optimizer steps per epoch; a multiple of ``steps_per_execution``.
      initial_epoch: the epochs done before (`selu_zoo.resume.ResumeCheckpoint.restore`).
      resume: a `selu_zoo.resume.ResumeCheckpoint` of the model, saved after every epoch
        (None: no checkpoints).
      validation_batches: optional dataset of global batches evaluated after each epoch.
      callbacks: Keras callbacks (or a ``keras.callbacks.CallbackList``) driven per epoch.
      jit_compile: compile each replica's forward and backward pass with XLA (the all-reduce
        and the optimizer update stay outside XLA).
      steps_per_execution: steps run per ``tf.function`` call.

    Returns:
      A `LoopResult`.

    Raises:
      ValueError: for a batch size the replicas do not divide, or bad step counts.
      NonFiniteLossError: if the loss became NaN or infinite (the last checkpoint is the
        epoch before).
    """
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch),
                        ("steps_per_execution", steps_per_execution)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if steps_per_epoch % steps_per_execution:
        raise ValueError(f"steps_per_epoch {steps_per_epoch} is not a multiple of "
                         f"steps_per_execution {steps_per_execution}")
    train_data = inputs.distribute_batches(strategy, train_batches, global_batch_size)
    validation_data = None if validation_batches is None else inputs.distribute_batches(
        strategy, validation_batches, global_batch_size)
    _build(model, strategy, train_batches)
    steps = _Steps(model, strategy, jit_compile, steps_per_execution, validation_data)
    callback_list = callbacks if isinstance(callbacks, keras.callbacks.CallbackList) else \
        keras.callbacks.CallbackList(callbacks or [], model=model)
    history, train_seconds = {}, []
    model.stop_training = False
    callback_list.on_train_begin()
    iterator = iter(train_data)
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        steps.reset()
        start = time.perf_counter()
        for _ in range(steps_per_epoch // steps_per_execution):
            steps.train_function(iterator)
        logs = steps.results()  # waits for the steps: the values are all-reduced
        seconds = time.perf_counter() - start
        train_seconds.append(seconds)
        if validation_data is not None:
            callback_list.on_test_begin()
            steps.reset()
            for batch in validation_data:
                steps.test_function(batch)
            logs.update({f"val_{name}": value for name, value in steps.results().items()})
            callback_list.on_test_end()
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        logging.debug("epoch %d/%d: %s (%.2f s, %.0f examples/s)", epoch + 1, epochs,
                      _format(logs), seconds, steps_per_epoch * global_batch_size / seconds)
        if not math.isfinite(logs["loss"]):  # the same on every worker: it is all-reduced
            raise NonFiniteLossError(f"the loss became {logs['loss']} in epoch {epoch + 1}")
        if resume is not None:
            resume.save(epoch + 1)
        callback_list.on_epoch_end(epoch, logs)
        # A callback on the chief may stop training; every worker must stop at the same epoch.
        if steps.any_worker(model.stop_training):
            break
    callback_list.on_train_end()
    return LoopResult(history=history, initial_epoch=initial_epoch,
                      epochs=initial_epoch + len(train_seconds), train_seconds=train_seconds)
