"""`SELURNNCell`: a simple recurrent cell with the exact SELU and LeCun-normal kernels."""

import keras

from selu_zoo import ops as selu_ops


@keras.saving.register_keras_serializable(package="selu_zoo")
class SELURNNCell(keras.layers.Layer):
    """One step of a self-normalizing recurrent network: ``h_t = selu(x_t W + h_{t-1} U + b)``.

    Use it inside ``keras.layers.RNN`` (``unroll=True`` needs a fixed sequence length and is
    what TFLite wants). Both kernels default to LeCun normal (variance 1/fan_in), so each of
    ``x_t W`` and ``h_{t-1} U`` has about the variance of its input, as self-normalization
    needs; Keras' ``SimpleRNNCell`` defaults to Glorot and orthogonal. The activation is
    `selu_zoo.ops.selu`. The cell has no dropout of its own: put an
    ``AlphaDropout(rate, noise_shape=(None, 1, None))`` before the RNN for one mask per
    sequence.

    With both kernels LeCun normal and standardized inputs, the pre-activation variance is
    about ``1 + E[h^2]``: the state converges to the fixed point for weights with sum of
    squares 2 (mean ~0.25, variance ~3), bounded but not (0, 1). For the (0, 1) fixed point,
    halve both: ``VarianceScaling(0.5, "fan_in", "truncated_normal")`` as kernel and
    recurrent initializer (what `models.rnn` does by default). The math runs in the layer's
    compute dtype, so it follows mixed-precision policies (variables stay in the variable
    dtype).

    Args:
      units: state and output width, a positive int.
      use_bias: whether to add a bias.
      kernel_initializer: initializer of the input kernel ``W``.
      recurrent_initializer: initializer of the recurrent kernel ``U``.
      bias_initializer: initializer of ``b``.
      kernel_regularizer, recurrent_regularizer, bias_regularizer: optional regularizers.
      kernel_constraint, recurrent_constraint, bias_constraint: optional constraints.
    """

    def __init__(self, units, use_bias=True, kernel_initializer="lecun_normal",
                 recurrent_initializer="lecun_normal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        in_features = input_shape[-1]
        if in_features is None:
            raise ValueError(f"SELURNNCell needs a known last input dimension, got {input_shape}")
        self.kernel = self.add_weight(
            name="kernel", shape=(in_features, self.units),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, self.units),
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint)
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer=self.bias_initializer,
            regularizer=self.bias_regularizer, constraint=self.bias_constraint
        ) if self.use_bias else None

    def call(self, inputs, states, training=False):
        """Runs one time step.

        Args:
          inputs: tensor of shape ``(batch, in_features)``, the input at time t.
          states: the previous state ``h_{t-1}``, a tensor or a one-element list of one.
          training: unused (the cell has no dropout); accepted for the RNN protocol.

        Returns:
          ``(h_t, new_states)`` where ``new_states`` has the structure of ``states``.
        """
        previous = states[0] if isinstance(states, (list, tuple)) else states
        dtype = self.compute_dtype
        z = keras.ops.matmul(inputs, keras.ops.cast(self.kernel, dtype))
        z = z + keras.ops.matmul(previous, keras.ops.cast(self.recurrent_kernel, dtype))
        if self.bias is not None:
            z = z + keras.ops.cast(self.bias, dtype)
        output = selu_ops.selu(z)
        new_states = [output] if isinstance(states, (list, tuple)) else output
        return output, new_states

    def get_initial_state(self, batch_size=None):
        """Zero state of shape ``(batch_size, units)`` in the compute dtype."""
        return [keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "units": self.units, "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
        }
