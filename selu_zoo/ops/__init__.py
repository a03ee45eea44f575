"""Tensor functions for self-normalizing networks: exact SELU, fused dense+SELU, alpha dropout.

Convention (the paper's, also PyTorch's and JAX's)::

    selu(x) = SCALE * x                       for x > 0
    selu(x) = SCALE * ALPHA * (exp(x) - 1)    for x <= 0

so the derivative at exactly 0 is ``SCALE * ALPHA`` (TensorFlow's own ``SeluGrad`` kernel uses
``SCALE`` there).

The implementation is chosen here, once, for the Keras backend in use:
`selu_zoo.ops.tensorflow_ops` on TensorFlow (a ``@tf.function`` forward that stock TensorFlow
Serving can serve, XLA-compiled backward and fused dropout, serving and TFLite lowerings) and
`selu_zoo.ops.keras_ops` on JAX and PyTorch (``keras.ops`` with ``keras.ops.custom_gradient``).
Both are exact to within 3e-7 relative in float32 (tests/test_ops.py scans densely on every
backend), and both draw alpha-dropout masks from `selu_zoo.ops.masks`, so a seed gives the
same masks on every backend.

Public functions:

* ``selu(x)``, ``selu_derivative(x)``: the activation and its derivative.
* ``selu_dense(x, kernel, bias=None)``: ``selu(x @ kernel + bias)``, the inference path of
  `selu_zoo.layers.SELUDense`.
* ``alpha_dropout(x, rate, seed, noise_shape=None, *, mean=0.0, variance=1.0)``: alpha
  dropout in training mode. ``seed`` is an int, a shape-[2] integer ``(seed, step)`` tensor or
  a `keras.random.SeedGenerator` (a new mask on every call, reproducible from its seed).
* ``selu_alpha_dropout(x, rate, seed, ...)``: ``alpha_dropout(selu(x), ...)``, fused into one
  pass on TensorFlow (training only).
* ``alpha_dropout_keep_probability(rate)``, ``validate_noise_shape(noise_shape)``.
* TensorFlow only: ``serving_lowering(form)``, ``tflite_lowering()``, `SERVING_FORMS`,
  `DEFAULT_SERVING_FORM` (trace-time switches used by `selu_zoo.export`).
"""

import keras

from selu_zoo.ops.masks import alpha_dropout_keep_probability, validate_noise_shape

if keras.backend.backend() == "tensorflow":
    from selu_zoo.ops.tensorflow_ops import (  # noqa: F401
        DEFAULT_SERVING_FORM, SERVING_FORMS, alpha_dropout, selu, selu_alpha_dropout,
        selu_dense, selu_derivative, serving_lowering, tflite_lowering)
else:
    from selu_zoo.ops.keras_ops import (  # noqa: F401
        alpha_dropout, selu, selu_alpha_dropout, selu_dense, selu_derivative)

__all__ = ["selu", "selu_derivative", "selu_dense", "alpha_dropout", "selu_alpha_dropout",
           "alpha_dropout_keep_probability", "validate_noise_shape"]
if keras.backend.backend() == "tensorflow":
    __all__ += ["serving_lowering", "tflite_lowering", "SERVING_FORMS", "DEFAULT_SERVING_FORM"]
