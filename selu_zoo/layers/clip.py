"""`Clip`: element-wise clipping to a fixed interval (e.g. standardized inputs to +-10)."""

import math

import keras

from selu_zoo.layers._built import mark_built_if_stateless


@keras.saving.register_keras_serializable(package="selu_zoo")
class Clip(keras.layers.Layer):
    """Clips every element to ``[min_value, max_value]``.

    Used after input standardization: a feature that is almost constant in the training split
    has a tiny variance, and a test value off that constant then standardizes to tens or
    hundreds, far outside the range a self-normalizing network was fitted on.

    Args:
      min_value: lower bound, a float.
      max_value: upper bound, a float > min_value.
    """

    def __init__(self, min_value, max_value, **kwargs):
        super().__init__(**kwargs)
        min_value, max_value = float(min_value), float(max_value)
        if math.isnan(min_value) or math.isnan(max_value) or not min_value < max_value:
            raise ValueError(f"need min_value < max_value, got {min_value!r}, {max_value!r}")
        self.min_value = min_value
        self.max_value = max_value
        self.supports_masking = True
        mark_built_if_stateless(self)

    def call(self, inputs):
        """Clips ``inputs``.

        Args:
          inputs: a floating-point tensor.

        Returns:
          A tensor of the same shape and dtype.
        """
        return keras.ops.clip(inputs, self.min_value, self.max_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value,
                "max_value": self.max_value}
