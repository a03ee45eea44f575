"""SELU op: selu_zoo.ops.selu against TensorFlow's and Keras' SELU and the element-wise floor.

selu_zoo's forward is a plain tf.function (never XLA-compiled, so that served models need no
XLA); outside XLA it runs as five TensorFlow kernels, against one fused kernel for
tf.nn.selu, which is not exact near 0. Under XLA every candidate fuses into one loop.
"""

import keras
import tensorflow as tf

from benchmarks import harness
from selu_zoo import ops

TITLE = "SELU op"
FULL_SIZE = 1 << 24  # 16M float32
QUICK_SIZE = 1 << 20


def build(settings, size=None):
    size = size or (QUICK_SIZE if settings.mode == "quick" else FULL_SIZE)
    functions = {
        "floor x*c1+c2": harness.floor,
        "selu_zoo.ops.selu": ops.selu,
        "tf.nn.selu": tf.nn.selu,
        "keras.activations.selu": keras.activations.selu,
    }
    return harness.elementwise_comparisons(
        "SELU", functions, size, references=["floor x*c1+c2", "tf.nn.selu"])
