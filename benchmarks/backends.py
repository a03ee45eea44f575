"""selu_zoo against each Keras backend's stock layers, on TensorFlow, JAX and PyTorch.

Per backend, in a process of its own (``KERAS_BACKEND`` is read once, at import), side by side
(`benchmarks.harness`):

* SELU forward and backward on 1M float32 values: `selu_zoo.ops.selu` against
  ``keras.activations.selu``, compiled as the backend compiles (``tf.function(jit_compile=True)``,
  ``jax.jit``; PyTorch eagerly);
* one training step (``train_on_batch``, Adam, batch 256, 784 inputs) of 4 x
  ``SELUDense(512, dropout_rate=0.05)`` against 4 x ``Dense(512, "selu",
  kernel_initializer="lecun_normal")`` + ``keras.layers.AlphaDropout(0.05)``; XLA on
  TensorFlow and JAX.

    python -m benchmarks --only=backends          # all three, one child process each
"""

import json
import os
import subprocess
import sys

import numpy as np

from benchmarks import harness

TITLE = "selu_zoo vs stock Keras on every backend"
BACKENDS = ("tensorflow", "jax", "torch")


def _compiled(fn):
    import keras  # noqa: PLC0415

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return tf.function(fn, jit_compile=True, autograph=False)
    return fn


def _forward_backward(activation):
    """``x -> (activation(x), d sum(activation(x)) / dx)`` through the backend's autodiff."""
    import keras  # noqa: PLC0415

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415

        def run(x):
            y, vjp = jax.vjp(activation, x)
            return y, vjp(jax.numpy.ones_like(y))[0]
    elif backend == "torch":
        import torch  # noqa: PLC0415

        def run(x):
            x = x.detach().requires_grad_(True)
            y = activation(x)
            y.backward(torch.ones_like(y))
            return y.detach(), x.grad
    else:
        import tensorflow as tf  # noqa: PLC0415

        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = activation(x)
            return y, tape.gradient(y, x)
    return _compiled(run)


def _block(fn):
    """Calls ``fn`` and waits for its result (JAX dispatches asynchronously)."""
    import keras  # noqa: PLC0415

    def run():
        out = fn()
        keras.ops.convert_to_numpy(keras.tree.flatten(out)[0])
    return run


def child_comparisons(settings):
    """This process's backend's comparisons, measured (run under ``KERAS_BACKEND``)."""
    import keras  # noqa: PLC0415

    import selu_zoo  # noqa: PLC0415

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    size = 2**16 if settings.mode == "quick" else 2**20
    x = keras.ops.convert_to_tensor(rng.standard_normal(size).astype("float32"))
    ours, stock = _forward_backward(selu_zoo.ops.selu), _forward_backward(
        keras.activations.selu)
    selu = harness.Comparison(
        name=f"SELU forward+backward, {backend}",
        candidates=[harness.Candidate("keras.activations.selu", _block(lambda: stock(x))),
                    harness.Candidate("selu_zoo.ops.selu", _block(lambda: ours(x)))],
        references=["keras.activations.selu"], items_per_call=size, item_name="elements",
        params={"backend": backend, "elements": size})
    batch, width = 256, 512
    features = rng.standard_normal((batch, 784)).astype("float32")
    labels = rng.integers(0, 10, batch)

    def mlp(zoo):
        keras.utils.set_random_seed(0)
        layers = [keras.Input((784,))]
        for i in range(4):
            layers += ([selu_zoo.layers.SELUDense(width, dropout_rate=0.05, seed=i)] if zoo
                       else [keras.layers.Dense(width, "selu",
                                                kernel_initializer="lecun_normal"),
                             keras.layers.AlphaDropout(0.05, seed=i)])
        model = keras.Sequential(layers + [keras.layers.Dense(10)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=backend != "torch")
        return model

    stock_model, zoo_model = mlp(False), mlp(True)
    step = harness.Comparison(
        name=f"4 x 512 dense + alpha dropout train step, batch {batch}, {backend}",
        candidates=[
            harness.Candidate("Dense(selu) + AlphaDropout",
                              lambda: stock_model.train_on_batch(features, labels)),
            harness.Candidate("SELUDense(dropout_rate)",
                              lambda: zoo_model.train_on_batch(features, labels))],
        references=["Dense(selu) + AlphaDropout"], items_per_call=batch,
        params={"backend": backend, "batch": batch, "width": width})
    return [harness.measure(c, settings) for c in (selu, step)]


def build(settings):
    """Runs one child process per backend; returns their measured comparisons."""
    measured = []
    for backend in BACKENDS:
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.backends", json.dumps(vars(settings))],
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True, text=True)
        if result.returncode != 0:
            raise harness.Skip(f"{backend}: {result.stderr.strip().splitlines()[-1:]}")
        measured += json.loads(result.stdout.strip().splitlines()[-1])
    return measured


if __name__ == "__main__":
    print(json.dumps(child_comparisons(harness.Settings(**json.loads(sys.argv[1])))))
