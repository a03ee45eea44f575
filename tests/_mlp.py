"""The small model and data of tests/test_distribute.py and its subprocess job."""

import keras
import numpy as np

from selu_zoo.layers import SELUDense

FEATURES, CLASSES = 16, 3


def make_data(n=384, seed=0):
    """A seeded 3-class problem: class means on three axes plus Gaussian noise.

    Args:
      n: number of examples.
      seed: NumPy seed.

    Returns:
      ``(x, y)``: float32 features ``(n, 16)`` and int64 labels ``(n,)``.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=n)
    x = rng.normal(size=(n, FEATURES)) + 2.0 * np.eye(CLASSES, FEATURES)[y]
    return x.astype(np.float32), y.astype(np.int64)


def make_model(dropout_rate=0.0, learning_rate=0.1, activity_l2=0.0):
    """Two SELUDense(32) layers and a Dense "logits" head, compiled with SGD; seeded weights.

    Args:
      dropout_rate: alpha dropout rate of the SELU layers.
      learning_rate: SGD learning rate.
      activity_l2: L2 activity regularization of the logits (a loss the model adds itself,
        a mean over the batch, as a VAE's KL term).

    Returns:
      The compiled functional model (build it inside ``strategy.scope()`` to distribute it).
    """
    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,), name="features")
    h = SELUDense(32, dropout_rate=dropout_rate, seed=1, name="selu_dense_1")(inputs)
    h = SELUDense(32, dropout_rate=dropout_rate, seed=2, name="selu_dense_2")(h)
    regularizer = keras.regularizers.L2(activity_l2) if activity_l2 else None
    logits = keras.layers.Dense(CLASSES, activity_regularizer=regularizer, name="logits")(h)
    model = keras.Model(inputs, logits, name="mlp")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model
