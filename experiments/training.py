"""Plain minibatch SGD (as in the paper) in one compiled loop per architecture.

Keras' ``fit`` costs tens of milliseconds per epoch and a fresh trace per model; the
experiments train hundreds of small networks, so `Trainer` runs many SGD steps in one
``tf.function`` call and is reused across learning rates and seeds of the same
architecture (only the weights are reset, the graph is traced once).
"""

import logging as std_logging

import numpy as np
import tensorflow as tf

_EVAL_CHUNK = 4096


class _ExpectedRetracingFilter(std_logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning.

    Every `Trainer` traces its own functions once, by design (one per architecture);
    TensorFlow counts those traces together and warns about them.
    """

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_ExpectedRetracingFilter())


class Trainer:
    """Minibatch SGD with softmax cross-entropy on in-memory data.

    Args:
      model: a Keras classifier returning logits, with vector inputs.
    """

    def __init__(self, model):
        self.model = model
        self.learning_rate = tf.Variable(0.01, dtype=tf.float32, trainable=False)
        input_dim = model.inputs[0].shape[-1]
        features = tf.TensorSpec([None, input_dim], tf.float32)
        labels = tf.TensorSpec([None], tf.int32)
        batches = tf.TensorSpec([None, None], tf.int32)
        self._train = tf.function(self._train_steps,
                                  input_signature=[features, labels, batches])
        self._logits = tf.function(lambda x: self.model(x, training=False),
                                   input_signature=[features])

    def reset(self, weights, learning_rate):
        """Sets the weights (from `Model.get_weights` of a fresh model) and the step size.

        Args:
          weights: list of arrays for ``model.set_weights``.
          learning_rate: SGD step size.
        """
        self.model.set_weights(weights)
        self.learning_rate.assign(float(learning_rate))

    def _train_steps(self, x, y, batches):
        steps = tf.shape(batches)[0]
        losses = tf.TensorArray(tf.float32, size=steps)
        variables = self.model.trainable_variables
        for i in tf.range(steps):
            index = batches[i]
            x_batch, y_batch = tf.gather(x, index), tf.gather(y, index)
            with tf.GradientTape() as tape:
                logits = self.model(x_batch, training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y_batch, logits))
            grads = tape.gradient(loss, variables)
            for variable, grad in zip(variables, grads):
                variable.assign_sub(self.learning_rate * grad)
            losses = losses.write(i, loss)
        return losses.stack()

    def train(self, x, y, batches):
        """Runs one SGD step per row of ``batches``.

        Args:
          x: float32 features ``(n, d)``.
          y: int32 labels ``(n,)``.
          batches: int ``(steps, batch_size)`` example indices, one row per step.

        Returns:
          float64 array of the ``steps`` minibatch losses (training mode).
        """
        return self._train(x, y, np.asarray(batches, np.int32)).numpy().astype(np.float64)

    def evaluate(self, x, y):
        """Mean cross-entropy and accuracy in inference mode.

        Args:
          x: float32 features ``(n, d)``.
          y: int labels ``(n,)``.

        Returns:
          ``(loss, accuracy)`` floats; the loss is NaN if the logits are not finite.
        """
        logits = np.concatenate([self._logits(x[i:i + _EVAL_CHUNK]).numpy()
                                 for i in range(0, len(x), _EVAL_CHUNK)]).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = float(-log_probs[np.arange(len(y)), y].mean())
        accuracy = float((logits.argmax(axis=1) == y).mean())
        return loss, accuracy


def epoch_batches(num_examples, batch_size, epochs, rng):
    """Example indices for ``epochs`` shuffled passes, dropping each pass's remainder.

    Args:
      num_examples: training set size (>= batch_size).
      batch_size: examples per step.
      epochs: number of passes.
      rng: a ``numpy.random.Generator``.

    Returns:
      int32 array ``(epochs * (num_examples // batch_size), batch_size)``.
    """
    steps = num_examples // batch_size
    return np.concatenate([
        rng.permutation(num_examples)[:steps * batch_size].reshape(steps, batch_size)
        for _ in range(epochs)]).astype(np.int32)


def stream_batches(num_examples, batch_size, steps, rng):
    """Example indices for ``steps`` steps from a stream of reshuffled passes.

    Consecutive passes are concatenated, so a batch may span two passes and every
    example is seen equally often; used where the step budget, not the epoch count, is
    fixed across datasets of different sizes.

    Args:
      num_examples: training set size.
      batch_size: examples per step.
      steps: number of steps.
      rng: a ``numpy.random.Generator``.

    Returns:
      int32 array ``(steps, batch_size)``.
    """
    needed = steps * batch_size
    passes = -(-needed // num_examples)
    stream = np.concatenate([rng.permutation(num_examples) for _ in range(passes)])
    return stream[:needed].reshape(steps, batch_size).astype(np.int32)
