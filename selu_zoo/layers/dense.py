"""`SELUDense`: Dense + bias + SELU as one fused op, then optional alpha dropout."""

import keras

from selu_zoo import ops, theory


@keras.saving.register_keras_serializable(package="selu_zoo")
class SELUDense(keras.layers.Layer):
    """A self-normalizing dense block: ``alpha_dropout(selu(x @ kernel + bias))``.

    In inference the matmul, bias and SELU run as `selu_zoo.ops.selu_dense` (no XLA in the
    forward, so exported models serve anywhere). In training the matmul and bias are followed
    by `selu_zoo.ops.selu_alpha_dropout` when ``dropout_rate > 0``: SELU and alpha dropout
    fused into one XLA-compiled pass, with a one-multiply backward.
    Weights default to LeCun normal (variance 1/fan_in), which self-normalization needs;
    Keras' own ``Dense`` defaults to Glorot. Like ``Dense``, it supports masking: an input
    mask (over the leading axes) passes through to the output.

    Args:
      units: output width, a positive int.
      dropout_rate: alpha dropout rate in [0, 1) applied after the SELU in training.
      use_bias: whether to add a bias.
      kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
      kernel_constraint, bias_constraint: as in ``keras.layers.Dense``.
      seed: int seed of the dropout mask generator (initializers take their own seeds).
    """

    def __init__(self, units, dropout_rate=0.0, use_bias=True,
                 kernel_initializer="lecun_normal", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = units
        self.dropout_rate = theory.validate_rate(dropout_rate, name="dropout_rate")
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.seed = seed
        if self.dropout_rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.input_spec = keras.InputSpec(min_ndim=2)
        self.supports_masking = True  # as keras.layers.Dense: a mask passes through unchanged

    def build(self, input_shape):
        in_features = input_shape[-1]
        if in_features is None:
            raise ValueError(f"SELUDense needs a known last input dimension, got {input_shape}")
        self.kernel = self.add_weight(
            name="kernel", shape=(in_features, self.units),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint)
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer=self.bias_initializer,
            regularizer=self.bias_regularizer, constraint=self.bias_constraint
        ) if self.use_bias else None
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: in_features})

    def call(self, inputs, training=False):
        kernel = keras.ops.cast(self.kernel, self.compute_dtype)
        bias = None if self.bias is None else keras.ops.cast(self.bias, self.compute_dtype)
        if not training or self.dropout_rate == 0:
            return ops.selu_dense(inputs, kernel, bias)
        # Training with dropout: the matmul and bias stay TensorFlow kernels (oneDNN);
        # SELU, mask, alpha' and the affine correction are one XLA-compiled pass. Never
        # reached by inference, which keeps the XLA-free `selu_dense`.
        z = keras.ops.matmul(inputs, kernel)
        if bias is not None:
            z = keras.ops.add(z, bias)
        return ops.selu_alpha_dropout(z, self.dropout_rate, self.seed_generator)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "units": self.units, "dropout_rate": self.dropout_rate, "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "seed": self.seed,
        }
