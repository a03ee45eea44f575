"""Training step of a self-normalizing MLP: selu_zoo layers vs stock Keras vs the linear floor.

8 x Dense(512) on 784 inputs, a Dense(10) head, batch 256, sparse softmax cross-entropy, SGD
(the update included), alpha dropout 0.05 after each hidden layer:

* selu_zoo: ``SELUDense(512, dropout_rate=0.05)`` (matmul + fused XLA SELU/dropout pass);
* stock Keras: ``Dense(512, activation="selu")`` + ``keras.layers.AlphaDropout(0.05)``;
* linear floor: the same Dense stack with no activation and no dropout;

each compiled with ``jit_compile=False`` (graph) and ``True`` (XLA), stepped with
``train_on_batch`` on one in-memory batch. When PyTorch is importable, the same MLP in PyTorch
(``nn.Linear`` + ``nn.SELU`` + ``nn.AlphaDropout``, SGD, eager) joins both comparisons.
"""

import os

import numpy as np

from benchmarks import harness

TITLE = "SNN MLP training step"
INPUTS, CLASSES, RATE = 784, 10, 0.05
FULL = {"depth": 8, "width": 512, "batch": 256}


def _keras_model(kind, depth, width, jit_compile):
    import keras

    from selu_zoo.layers import SELUDense

    inputs = keras.Input((INPUTS,), name="x")
    h = inputs
    for _ in range(depth):
        if kind == "selu_zoo":
            h = SELUDense(width, dropout_rate=RATE)(h)
        elif kind == "keras":
            h = keras.layers.Dense(width, activation="selu", kernel_initializer="lecun_normal")(h)
            h = keras.layers.AlphaDropout(RATE)(h)
        else:
            h = keras.layers.Dense(width, kernel_initializer="lecun_normal")(h)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(h))
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    return model


def _torch_steps(x, y, depth, width):
    """PyTorch training steps of the same MLP: {name: step}, empty when torch is missing.

    Two candidates: torch's default thread count and one thread. OpenMP's static
    partitioning makes multi-threaded PyTorch very sensitive to other processes competing for
    the cores (on the shared 2-core benchmark machine it varies by 10x), so the single-thread
    step is shown too.
    """
    # Idle OpenMP workers must sleep, not spin: spinning threads would steal the cores from
    # the TensorFlow candidate measured next (only effective before torch's first import).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return {}
    from torch import nn

    torch.manual_seed(0)
    modules, fan_in = [], INPUTS
    for _ in range(depth):
        modules += [nn.Linear(fan_in, width), nn.SELU(), nn.AlphaDropout(RATE)]
        fan_in = width
    model = nn.Sequential(*modules, nn.Linear(fan_in, CLASSES)).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def step(threads):
        torch.set_num_threads(threads)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss

    default = torch.get_num_threads()
    steps = {f"PyTorch CPU ({default} threads)": lambda: step(default)}
    if default != 1:
        steps["PyTorch CPU (1 thread)"] = lambda: step(1)
    return steps


def build(settings, depth=None, width=None, batch=None):
    depth = depth or FULL["depth"]
    width = width or FULL["width"]
    batch = batch or FULL["batch"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, INPUTS)).astype("float32")
    y = rng.integers(0, CLASSES, batch).astype("int32")
    torch_steps = _torch_steps(x, y, depth, width)
    comparisons = []
    for mode, jit in (("graph", False), ("XLA", True)):
        candidates = []
        for kind, label in (("linear", "linear floor"), ("selu_zoo", "selu_zoo SELUDense"),
                            ("keras", "stock Keras")):
            model = _keras_model(kind, depth, width, jit)
            candidates.append(harness.Candidate(
                f"{label} ({mode})", lambda m=model: m.train_on_batch(x, y)))
        candidates += [harness.Candidate(name, step) for name, step in torch_steps.items()]
        notes = ["selu_zoo SELUDense trains through selu_zoo.ops.selu_alpha_dropout: matmul and "
                 "bias as TensorFlow kernels, then one XLA loop forward and one backward per "
                 "layer (each an XlaLaunch inside the graph when jit_compile=False)."]
        if not torch_steps:
            notes.append("PyTorch is not importable: its candidates were skipped.")
        comparisons.append(harness.Comparison(
            name=f"train step, jit_compile={jit}", candidates=candidates,
            references=[f"linear floor ({mode})", f"stock Keras ({mode})", *torch_steps],
            items_per_call=batch, item_name="examples",
            params={"depth": depth, "width": width, "batch": batch, "inputs": INPUTS,
                    "dropout_rate": RATE, "optimizer": "SGD(0.01)", "jit_compile": jit},
            notes=notes))
    return comparisons
