"""Alpha dropout layers: element-wise (`AlphaDropout`) and per channel (`FeatureAlphaDropout`)."""

import keras

from selu_zoo import ops, theory
from selu_zoo.layers._built import mark_built_if_stateless


class _AlphaDropoutBase(keras.layers.Layer):
    """Shared constructor, validation, config and call of the alpha dropout layers."""

    def __init__(self, rate, seed=None, mean=0.0, variance=1.0, **kwargs):
        super().__init__(**kwargs)
        self.rate = theory.validate_rate(rate)
        # Solves (and so validates) the fixed point now, not at the first training step.
        theory.alpha_dropout_parameters(self.rate, mean, variance)
        self.mean = float(mean)
        self.variance = float(variance)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        mark_built_if_stateless(self)

    def _noise_shape(self, inputs):
        raise NotImplementedError

    def call(self, inputs, training=False):
        """Alpha dropout in training, the identity otherwise.

        Args:
          inputs: a floating-point tensor.
          training: whether to drop units.

        Returns:
          A tensor of the same shape and dtype.
        """
        if not training or self.rate == 0:
            return inputs
        return ops.alpha_dropout(inputs, self.rate, self.seed_generator,
                                 noise_shape=self._noise_shape(inputs),
                                 mean=self.mean, variance=self.variance)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "mean": self.mean, "variance": self.variance}


@keras.saving.register_keras_serializable(package="selu_zoo")
class AlphaDropout(_AlphaDropoutBase):
    """Alpha dropout: keeps self-normalized activations at their fixed point while dropping.

    In training, each unit is dropped with probability ``rate`` and set to the SELU saturation
    value, then an affine map restores the fixed point's mean and variance. In inference it is
    the identity.

    Args:
      rate: drop probability in [0, 1).
      noise_shape: optional mask shape broadcast against the inputs: positive ints (1 to
        share the mask along an axis) or ``None`` (the input's dimension). Checked here; the
        input's rank, and its dimensions where an entry is above 1, are checked when the
        layer is called.
      seed: int seed of the mask generator: reproducible masks that differ at every step.
      mean: fixed-point mean of the incoming activations (0 for standard SELU networks).
      variance: fixed-point variance of the incoming activations (1 for standard SELU).
    """

    def __init__(self, rate, noise_shape=None, seed=None, mean=0.0, variance=1.0, **kwargs):
        super().__init__(rate, seed=seed, mean=mean, variance=variance, **kwargs)
        self.noise_shape = ops.validate_noise_shape(noise_shape)
        if self.noise_shape is not None:
            self.input_spec = keras.InputSpec(
                ndim=len(self.noise_shape),
                axes={i: d for i, d in enumerate(self.noise_shape) if d not in (None, 1)})

    def _noise_shape(self, inputs):
        return self.noise_shape

    def get_config(self):
        return {**super().get_config(), "noise_shape": self.noise_shape}


@keras.saving.register_keras_serializable(package="selu_zoo")
class FeatureAlphaDropout(_AlphaDropoutBase):
    """Alpha dropout of whole features/channels, the SELU counterpart of ``SpatialDropout``.

    One keep mask per example and channel, shared over every time step or spatial position,
    so a dropped feature map is dropped everywhere.

    Args:
      rate: drop probability in [0, 1).
      seed: int seed of the mask generator.
      mean: fixed-point mean of the incoming activations.
      variance: fixed-point variance of the incoming activations.
      data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
        ``keras.config.image_data_format()``.
    """

    def __init__(self, rate, seed=None, mean=0.0, variance=1.0, data_format=None, **kwargs):
        super().__init__(rate, seed=seed, mean=mean, variance=variance, **kwargs)
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"data_format must be 'channels_last' or 'channels_first', "
                             f"got {data_format!r}")
        self.data_format = data_format

    def _noise_shape(self, inputs):
        rank = len(inputs.shape)
        channel_axis = rank - 1 if self.data_format == "channels_last" else 1
        return tuple(None if axis in (0, channel_axis) else 1 for axis in range(rank))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}
