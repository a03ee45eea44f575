"""SELU op: selu_zoo.ops.selu against TensorFlow's and Keras' SELU and the element-wise floor.

selu_zoo's forward is a plain tf.function (never XLA-compiled, so that served models need no
XLA); outside XLA it runs as 16 TensorFlow kernels (a polynomial near 0 and TensorFlow's Selu
kernel elsewhere), against one fused kernel for tf.nn.selu, which is not exact near 0. Under
XLA every candidate fuses into one loop.
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
    comparisons = harness.elementwise_comparisons(
        "SELU", functions, size, references=["floor x*c1+c2", "tf.nn.selu"])
    for comparison in comparisons:
        comparison.notes.append(_XLA_NOTE if comparison.params["jit_compile"] else _GRAPH_NOTE)
    return comparisons


_GRAPH_NOTE = (
    "selu_zoo.ops.selu's forward is never XLA-compiled (served SavedModels must not need "
    "XLA). Outside XLA it is 16 TensorFlow kernels (a degree-5 polynomial for -0.5 < x < 0, "
    "the Selu kernel, two compares, a select) against one fused Selu kernel for tf.nn.selu / "
    "keras.activations.selu, which compute exp(x) - 1 and return 0 for -1e-8. The Expm1 "
    "kernel it used before was no faster and not exact on large tensors (see the serving "
    "group). Its backward is one XLA loop.")
_XLA_NOTE = (
    "Under XLA each candidate is one loop per pass, bound by exp/expm1 on this CPU; "
    "selu_zoo's forward computes both the Selu lowering (expm1) and the polynomial. "
    "selu_zoo's backward computes exp from the input (exact for large negative x) where "
    "TensorFlow's reuses the output.")
