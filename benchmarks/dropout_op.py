"""Alpha dropout in training mode: selu_zoo's layer against keras.layers.AlphaDropout.

Also shown: the element-wise floor, and selu_zoo's fused SELU + alpha dropout
(`selu_zoo.ops.selu_alpha_dropout`, the training path of SELUDense), which does the SELU's
work as well.
"""

import keras

from benchmarks import harness
from selu_zoo import layers, ops

TITLE = "Alpha dropout (training)"
FULL_SIZE = 1 << 24  # 16M float32
QUICK_SIZE = 1 << 20
RATE = 0.05


def build(settings, size=None):
    size = size or (QUICK_SIZE if settings.mode == "quick" else FULL_SIZE)
    zoo_layer = layers.AlphaDropout(RATE, seed=1)
    keras_layer = keras.layers.AlphaDropout(RATE, seed=1)
    fused_seed = keras.random.SeedGenerator(2)
    functions = {
        "floor x*c1+c2": harness.floor,
        "selu_zoo AlphaDropout": lambda x: zoo_layer(x, training=True),
        "keras.layers.AlphaDropout": lambda x: keras_layer(x, training=True),
        "selu_zoo selu_alpha_dropout (SELU+dropout)":
            lambda x: ops.selu_alpha_dropout(x, RATE, fused_seed),
    }
    comparisons = harness.elementwise_comparisons(
        f"alpha dropout rate {RATE}", functions, size,
        references=["keras.layers.AlphaDropout", "floor x*c1+c2"])
    for comparison in comparisons:
        comparison.params["rate"] = RATE
        if comparison.params["jit_compile"]:
            comparison.notes.append(
                "keras.layers.AlphaDropout under XLA: its mask comes from "
                "tf.random.stateless_uniform with the default algorithm and a seed read from "
                "a variable, which XLA:CPU expands into code costing a fraction of a "
                "microsecond per element; it gets fewer repeats (time budget).")
    return comparisons
