"""Per-example reconstruction losses (negative log-likelihoods) for variational autoencoders.

Each loss sums over every non-batch axis, so one value is the negative log-likelihood of one
whole example; Keras then averages over the batch. Together with the KL term that
`selu_zoo.layers.VAESampling` adds, the training loss is the negative ELBO per example.
"""

import math

import keras

__all__ = ["BernoulliReconstruction", "GaussianReconstruction"]


def _sum_per_example(values):
    """Sums a tensor of shape ``(batch, ...)`` over all axes but the first."""
    values = keras.ops.reshape(values, (keras.ops.shape(values)[0], -1))
    return keras.ops.sum(values, axis=-1)


@keras.saving.register_keras_serializable(package="selu_zoo")
class BernoulliReconstruction(keras.losses.Loss):
    """Bernoulli negative log-likelihood summed over features: ``-sum log p(x | logits)``.

    Targets in [0, 1]: binary, or grey values read as Bernoulli targets (the usual VAE
    convention; the result is then a cross-entropy, not a normalized likelihood). With ``from_logits=True`` it uses the stable form
    ``max(l, 0) - l * x + log1p(exp(-|l|))``, finite for any finite logits and targets.

    Args:
      from_logits: whether ``y_pred`` holds logits (True) or probabilities.
      reduction: Keras reduction over the per-example values.
      name: loss name.
      dtype: dtype the loss is computed in (defaults to Keras' floatx).
    """

    def __init__(self, from_logits=True, reduction="sum_over_batch_size",
                 name="bernoulli_reconstruction", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        """Per-example negative log-likelihood.

        Args:
          y_true: targets of shape ``(batch, ...)``.
          y_pred: logits or probabilities of the same shape.

        Returns:
          Tensor of shape ``(batch,)``.
        """
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        if self.from_logits:
            nll = (keras.ops.relu(y_pred) - y_pred * y_true
                   + keras.ops.log1p(keras.ops.exp(-keras.ops.abs(y_pred))))
        else:
            eps = keras.config.epsilon()
            p = keras.ops.clip(y_pred, eps, 1.0 - eps)
            nll = -(y_true * keras.ops.log(p) + (1.0 - y_true) * keras.ops.log1p(-p))
        return _sum_per_example(nll)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="selu_zoo")
class GaussianReconstruction(keras.losses.Loss):
    """Gaussian negative log-likelihood with a fixed variance, summed over features.

    ``0.5 * sum((x - mean)^2 / variance + log(2 pi variance))``: ``y_pred`` is the mean.

    Args:
      variance: the fixed observation variance, a finite float > 0.
      reduction: Keras reduction over the per-example values.
      name: loss name.
      dtype: dtype the loss is computed in (defaults to Keras' floatx).
    """

    def __init__(self, variance=1.0, reduction="sum_over_batch_size",
                 name="gaussian_reconstruction", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        variance = float(variance)
        if not (math.isfinite(variance) and variance > 0):
            raise ValueError(f"variance must be a finite float > 0, got {variance!r}")
        self.variance = variance

    def call(self, y_true, y_pred):
        """Per-example negative log-likelihood.

        Args:
          y_true: targets of shape ``(batch, ...)``.
          y_pred: predicted means of the same shape.

        Returns:
          Tensor of shape ``(batch,)``.
        """
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        log_norm = 0.5 * math.log(2.0 * math.pi * self.variance)
        nll = 0.5 * keras.ops.square(y_true - y_pred) / self.variance + log_norm
        return _sum_per_example(nll)

    def get_config(self):
        return {**super().get_config(), "variance": self.variance}
