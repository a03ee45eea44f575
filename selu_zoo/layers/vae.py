"""`VAESampling`: the reparameterized Gaussian posterior sample of a VAE, with its KL term."""

import math

import keras

from selu_zoo.layers._built import mark_built_if_stateless


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over the latent axis.

    Args:
      mean: tensor of shape ``(batch, latent_dim)``.
      log_var: tensor of the same shape, the log-variance (already clamped by the caller).

    Returns:
      Tensor of shape ``(batch,)``.
    """
    return 0.5 * keras.ops.sum(
        keras.ops.square(mean) + keras.ops.exp(log_var) - 1.0 - log_var, axis=-1)


@keras.saving.register_keras_serializable(package="selu_zoo")
class VAESampling(keras.layers.Layer):
    """Draws ``z = mean + exp(log_var / 2) * eps`` and adds the KL divergence to the prior.

    Called on ``[z_mean, z_log_var]``. The log-variance is first clipped to
    ``[min_log_var, max_log_var]`` so that ``exp`` cannot overflow (and the KL stays finite)
    whatever the encoder outputs. ``kl_weight * mean_over_batch(KL)`` is added with
    ``add_loss`` on every call, training or not, so a model trained with
    ``fit(x, x)`` and a per-example reconstruction loss minimizes the negative ELBO, and
    ``evaluate`` reports it too. The math runs in float32 whatever the dtype policy; the
    output is cast to the compute dtype.

    Inference mode returns ``z_mean`` (deterministic serving: the same input always gives the
    same output) unless ``sample_in_inference=True``; training mode always samples.

    Args:
      seed: int seed of the noise generator (a `keras.random.SeedGenerator`): the sequence of
        draws is reproducible from it and differs from call to call.
      kl_weight: non-negative multiplier of the KL term (1.0 gives the ELBO).
      min_log_var: lower clip of the log-variance.
      max_log_var: upper clip of the log-variance (float32 ``exp`` overflows near 88).
      sample_in_inference: whether to sample also when ``training`` is False.
    """

    def __init__(self, seed=None, kl_weight=1.0, min_log_var=-20.0, max_log_var=20.0,
                 sample_in_inference=False, **kwargs):
        super().__init__(**kwargs)
        kl_weight = float(kl_weight)
        if not (math.isfinite(kl_weight) and kl_weight >= 0):
            raise ValueError(f"kl_weight must be a finite float >= 0, got {kl_weight!r}")
        min_log_var, max_log_var = float(min_log_var), float(max_log_var)
        if not (-80.0 <= min_log_var < max_log_var <= 80.0):
            raise ValueError(f"need -80 <= min_log_var < max_log_var <= 80, got "
                             f"{min_log_var!r}, {max_log_var!r}")
        self.seed = seed
        self.kl_weight = kl_weight
        self.min_log_var = min_log_var
        self.max_log_var = max_log_var
        self.sample_in_inference = bool(sample_in_inference)
        self.seed_generator = keras.random.SeedGenerator(seed)
        mark_built_if_stateless(self)

    def call(self, inputs, training=False):
        """Samples z and records the KL term.

        Args:
          inputs: ``[z_mean, z_log_var]``, each of shape ``(batch, latent_dim)``.
          training: whether to sample (always) or return the mean (unless
            ``sample_in_inference``).

        Returns:
          Tensor of shape ``(batch, latent_dim)`` in the compute dtype.
        """
        mean, log_var = inputs
        mean = keras.ops.cast(mean, "float32")
        log_var = keras.ops.clip(keras.ops.cast(log_var, "float32"),
                                 self.min_log_var, self.max_log_var)
        self.add_loss(self.kl_weight * keras.ops.mean(gaussian_kl(mean, log_var)))
        if training or self.sample_in_inference:
            eps = keras.random.normal(keras.ops.shape(mean), dtype="float32",
                                      seed=self.seed_generator)
            z = mean + keras.ops.exp(0.5 * log_var) * eps
        else:
            z = mean
        return keras.ops.cast(z, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "kl_weight": self.kl_weight,
                "min_log_var": self.min_log_var, "max_log_var": self.max_log_var,
                "sample_in_inference": self.sample_in_inference}
