"""The SELU activation as a Keras layer."""

import keras

from selu_zoo import ops
from selu_zoo.layers._built import mark_built_if_stateless


@keras.saving.register_keras_serializable(package="selu_zoo")
class SELU(keras.layers.Layer):
    """Applies `selu_zoo.ops.selu` element-wise: exact SELU with an XLA-compiled gradient.

    Use it in place of ``keras.layers.Activation("selu")``, which is not exact for small
    negative inputs (it returns 0 for -1e-8). Output dtype is the layer's compute dtype,
    so it follows mixed-precision policies. Stateless: built once constructed; masks pass
    through.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        mark_built_if_stateless(self)

    def call(self, inputs):
        """Applies the SELU.

        Args:
          inputs: a floating-point tensor.

        Returns:
          A tensor of the same shape, in the layer's compute dtype.
        """
        return ops.selu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape
