"""`snn_vae`: a variational autoencoder with self-normalizing encoder and decoder."""

import keras

from models import common
from selu_zoo import tasks

__all__ = ["build_encoder", "build_decoder", "build_snn_vae"]


def _linear_to_shape(h, shape, name):
    """A float32 linear layer from ``(batch, d)`` to ``(batch, *shape)``."""
    if len(shape) == 1:
        return keras.layers.Dense(shape[0], kernel_initializer="lecun_normal", dtype="float32",
                                  name=name)(h)
    letters = "cdefgh"[:len(shape)]
    return keras.layers.EinsumDense(f"ab,b{letters}->a{letters}", output_shape=shape,
                                    bias_axes=letters, kernel_initializer="lecun_normal",
                                    dtype="float32", name=name)(h)


def build_encoder(config, info):
    """The inference network q(z | x): standardize -> SELUDense stack -> (z_mean, z_log_var).

    Args:
      config: ConfigDict with ``depth``, ``width``, ``dropout_rate``, ``latent_dim``,
        ``residual``, ``clip_standardized`` and ``seed``.
      info: the dataset's `DatasetInfo`.

    Returns:
      A functional `keras.Model` named ``"encoder"``, input ``"features"``, outputs
      ``[z_mean, z_log_var]`` from float32 linear layers of those names.
    """
    inputs, h = common.standardized_input(config, info)
    if len(h.shape) > 2:
        h = keras.layers.Flatten(name="flatten")(h)
    h = common.dense_stack(h, config.depth, config.width, config.dropout_rate, config.seed,
                           residual=config.residual, name="encoder_dense")
    head = dict(kernel_initializer="lecun_normal", dtype="float32")
    z_mean = keras.layers.Dense(config.latent_dim, name="z_mean", **head)(h)
    z_log_var = keras.layers.Dense(config.latent_dim, name="z_log_var", **head)(h)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(config, info):
    """The generative network p(x | z): SELUDense stack -> linear output of the data's shape.

    Args:
      config: ConfigDict with ``depth``, ``width``, ``dropout_rate``, ``latent_dim``,
        ``residual`` and ``seed``.
      info: the dataset's `DatasetInfo` (the output has ``info.feature_shape``).

    Returns:
      A functional `keras.Model` named ``"decoder"``, input ``"z"``, one float32 output:
      the likelihood's parameter (logits or mean) for every feature.
    """
    z = keras.Input((config.latent_dim,), name="z")
    seed = None if config.seed is None else config.seed + 1000
    h = common.dense_stack(z, config.depth, config.width, config.dropout_rate, seed,
                           residual=config.residual, name="decoder_dense")
    shape = tuple(int(d) for d in info.feature_shape)
    return keras.Model(z, _linear_to_shape(h, shape, "x_parameter"), name="decoder")


def build_snn_vae(config, info):
    """The full VAE: a `selu_zoo.tasks.VAE` of `build_encoder` and `build_decoder`.

    Args:
      config: ConfigDict with the encoder and decoder fields plus ``likelihood``,
        ``gaussian_variance`` and ``kl_weight``.
      info: the dataset's `DatasetInfo`.

    Returns:
      A `selu_zoo.tasks.VAE` named ``"snn_vae"``.
    """
    return tasks.VAE(build_encoder(config, info), build_decoder(config, info),
                     likelihood=config.likelihood, gaussian_variance=config.gaussian_variance,
                     kl_weight=config.kl_weight, seed=config.seed, name="snn_vae")
