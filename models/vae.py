"""`snn_vae`: a variational autoencoder with self-normalizing encoder and decoder.

The full model is ``decoder(sampling(encoder(x)))``, trained with ``fit(x, x)``; its loss is
the negative ELBO per example (reconstruction loss from `reconstruction_loss` plus the KL
term that the `selu_zoo.layers.VAESampling` layer adds). Encoder and decoder are nested
functional models reachable as ``model.get_layer("encoder")`` / ``"decoder"``, so everything
built from them here shares the full model's variables.
"""

import keras
import numpy as np

from models import common
from selu_zoo.layers import VAESampling
from selu_zoo.layers.vae import gaussian_kl
from selu_zoo.losses import BernoulliReconstruction, GaussianReconstruction

__all__ = ["LIKELIHOODS", "build_encoder", "build_decoder", "build_snn_vae",
           "reconstruction_loss", "likelihood_of", "sampler", "encode", "decode", "sample",
           "reconstruct", "negative_elbo"]

LIKELIHOODS = ("bernoulli", "gaussian")
_OUTPUT_NAMES = {"bernoulli": "x_logits", "gaussian": "x_mean"}


def _likelihood(config):
    likelihood = config.get("likelihood", "bernoulli")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return likelihood


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
      config: ConfigDict with ``depth``, ``width``, ``dropout_rate``, ``latent_dim``, ``seed``.
      info: the dataset's `DatasetInfo`.

    Returns:
      A functional `keras.Model` named ``"encoder"``, input ``"features"``, outputs
      ``[z_mean, z_log_var]`` from float32 linear Dense layers of those names (no dropout on
      them; the log-variance is clamped in `VAESampling`).
    """
    inputs, h = common.standardized_input(config, info)
    if len(h.shape) > 2:
        h = keras.layers.Flatten(name="flatten")(h)
    h = common.dense_stack(h, config.depth, config.width, config.dropout_rate, config.seed,
                           residual=config.get("residual", False), name="encoder_dense")
    head = dict(kernel_initializer="lecun_normal", dtype="float32")
    z_mean = keras.layers.Dense(config.latent_dim, name="z_mean", **head)(h)
    z_log_var = keras.layers.Dense(config.latent_dim, name="z_log_var", **head)(h)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_decoder(config, info):
    """The generative network p(x | z): SELUDense stack -> linear output of the data's shape.

    Args:
      config: ConfigDict with ``depth``, ``width``, ``dropout_rate``, ``latent_dim``,
        ``likelihood`` (``"bernoulli"`` or ``"gaussian"``), ``seed``.
      info: the dataset's `DatasetInfo` (the output has ``info.feature_shape``).

    Returns:
      A functional `keras.Model` named ``"decoder"``, input ``"z"``, one float32 output from
      the linear layer ``"x_logits"`` (Bernoulli) or ``"x_mean"`` (Gaussian).
    """
    z = keras.Input((config.latent_dim,), name="z")
    seed = None if config.seed is None else config.seed + 1000
    h = common.dense_stack(z, config.depth, config.width, config.dropout_rate, seed,
                           residual=config.get("residual", False), name="decoder_dense")
    shape = tuple(int(d) for d in info.feature_shape)
    outputs = _linear_to_shape(h, shape, _OUTPUT_NAMES[_likelihood(config)])
    return keras.Model(z, outputs, name="decoder")


def build_snn_vae(config, info):
    """The full VAE: ``decoder(VAESampling(encoder(features)))``.

    Args:
      config: ConfigDict with the encoder/decoder fields plus ``kl_weight`` (default 1).
      info: the dataset's `DatasetInfo`.

    Returns:
      A functional `keras.Model` named ``"snn_vae"`` with input ``"features"`` and the
      decoder's output; layers ``"encoder"``, ``"sampling"`` and ``"decoder"``.
    """
    encoder = build_encoder(config, info)
    decoder = build_decoder(config, info)
    inputs = keras.Input(tuple(int(d) for d in info.feature_shape), name="features")
    z_mean, z_log_var = encoder(inputs)
    z = VAESampling(seed=config.seed, kl_weight=config.get("kl_weight", 1.0), dtype="float32",
                    name="sampling")([z_mean, z_log_var])
    return keras.Model(inputs, decoder(z), name="snn_vae")


def reconstruction_loss(config, reduction="sum_over_batch_size"):
    """The per-example reconstruction loss that matches ``config.likelihood``.

    Args:
      config: ConfigDict with ``likelihood`` and, for ``"gaussian"``, ``gaussian_variance``.
      reduction: Keras reduction (None for per-example values).

    Returns:
      A `BernoulliReconstruction(from_logits=True)` or `GaussianReconstruction`.
    """
    if _likelihood(config) == "bernoulli":
        return BernoulliReconstruction(from_logits=True, reduction=reduction)
    return GaussianReconstruction(variance=config.get("gaussian_variance", 1.0),
                                  reduction=reduction)


def likelihood_of(model):
    """``"bernoulli"`` or ``"gaussian"``, read from the decoder's output layer name.

    Args:
      model: a model built by `build_snn_vae` (or loaded from one).

    Returns:
      The likelihood name.
    """
    output_name = model.get_layer("decoder").layers[-1].name
    return {v: k for k, v in _OUTPUT_NAMES.items()}[output_name]


def sampler(model):
    """A generator ``z -> E[x | z]`` that shares the trained decoder's variables.

    Args:
      model: a model built by `build_snn_vae`.

    Returns:
      A functional `keras.Model` named ``"sampler"`` with input ``"z"`` and output
      ``"x_probs"`` (sigmoid of the logits, Bernoulli) or ``"x_mean"`` (Gaussian).
    """
    decoder = model.get_layer("decoder")
    z = keras.Input(decoder.input.shape[1:], name="z")
    outputs = decoder(z)
    if likelihood_of(model) == "bernoulli":
        outputs = keras.layers.Activation("sigmoid", dtype="float32", name="x_probs")(outputs)
    else:
        outputs = keras.layers.Identity(dtype="float32", name="x_mean")(outputs)
    return keras.Model(z, outputs, name="sampler")


def encode(model, x):
    """The posterior parameters of ``x`` in inference mode.

    Args:
      model: a model built by `build_snn_vae`.
      x: array of shape ``(n, *feature_shape)``, raw features.

    Returns:
      ``(z_mean, z_log_var)`` NumPy arrays of shape ``(n, latent_dim)`` (log-variance as the
      encoder outputs it, before the sampling layer's clamp).
    """
    z_mean, z_log_var = model.get_layer("encoder")(x, training=False)
    return np.asarray(z_mean), np.asarray(z_log_var)


def decode(model, z):
    """``E[x | z]``: probabilities (Bernoulli) or means (Gaussian).

    Args:
      model: a model built by `build_snn_vae`.
      z: array of shape ``(n, latent_dim)``.

    Returns:
      NumPy array of shape ``(n, *feature_shape)``.
    """
    return np.asarray(sampler(model)(np.asarray(z, np.float32), training=False))


def sample(model, num_samples, seed=None):
    """New examples: ``E[x | z]`` for ``z`` drawn from the prior N(0, I).

    Args:
      model: a model built by `build_snn_vae`.
      num_samples: how many examples.
      seed: int seed of the prior draw (reproducible), or None.

    Returns:
      NumPy array of shape ``(num_samples, *feature_shape)``.
    """
    latent_dim = model.get_layer("decoder").input.shape[-1]
    z = np.random.default_rng(seed).standard_normal((num_samples, latent_dim))
    return decode(model, z)


def reconstruct(model, x):
    """``E[x | z = posterior mean of x]``, the deterministic reconstruction.

    Args:
      model: a model built by `build_snn_vae`.
      x: array of shape ``(n, *feature_shape)``, raw features.

    Returns:
      NumPy array of x's shape: probabilities (Bernoulli) or means (Gaussian).
    """
    z_mean, _ = encode(model, x)
    return decode(model, z_mean)


def negative_elbo(model, x, loss=None, num_samples=1, seed=None):
    """Monte Carlo estimate of ``-ELBO(x)`` per example, in nats.

    ``reconstruction(x, decoder(z)) + KL(q(z | x) || N(0, I))`` with ``z`` drawn from the
    posterior (``num_samples`` draws averaged), using the sampling layer's log-variance clamp
    and its KL weight.

    Args:
      model: a model built by `build_snn_vae`.
      x: array of shape ``(n, *feature_shape)``, raw features; also the targets.
      loss: per-example reconstruction loss; defaults to the model's likelihood (Gaussian
        with variance 1).
      num_samples: posterior draws per example.
      seed: int seed of the draws, or None.

    Returns:
      NumPy array of shape ``(n,)``.
    """
    if loss is None:
        loss = (BernoulliReconstruction(from_logits=True, reduction=None)
                if likelihood_of(model) == "bernoulli"
                else GaussianReconstruction(reduction=None))
    sampling = model.get_layer("sampling")
    z_mean, z_log_var = model.get_layer("encoder")(x, training=False)
    z_mean = keras.ops.cast(z_mean, "float32")
    z_log_var = keras.ops.clip(keras.ops.cast(z_log_var, "float32"),
                               sampling.min_log_var, sampling.max_log_var)
    decoder = model.get_layer("decoder")
    rng = np.random.default_rng(seed)
    targets = np.asarray(x, np.float32)
    reconstruction = 0.0
    for _ in range(num_samples):
        eps = rng.standard_normal(z_mean.shape).astype(np.float32)
        z = z_mean + keras.ops.exp(0.5 * z_log_var) * eps
        per_example = loss(targets, decoder(z, training=False))
        reconstruction += np.asarray(per_example, np.float64) / num_samples
    kl = np.asarray(gaussian_kl(z_mean, z_log_var), np.float64)
    return reconstruction + sampling.kl_weight * kl
