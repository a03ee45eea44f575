"""The zoo's train step against its linear floor, as `train.py` runs it on a user's CSV.

The network is the `snn` zoo model on 24 standardized features with 2 classes (`models.snn`:
4 x ``SELUDense(256)`` with alpha dropout 0.05, a linear head, Adam), trained the way
`train.py` trains it: Keras ``fit``'s own train function, ``steps_per_execution`` steps per
call from an in-memory ``tf.data`` pipeline. Each comparison has three candidates:

* selu_zoo: the `snn` model as `models.snn.build_snn` builds it;
* stock Keras: ``Dense(256, "selu", kernel_initializer="lecun_normal")`` +
  ``keras.layers.AlphaDropout(0.05)`` in the same task model;
* linear floor: the same task model with linear ``Dense(256)`` layers and no dropout;

at batch 32 and 256, compiled with ``jit_compile=True`` (the zoo's default) and ``False``.
One call runs ``steps_per_execution`` steps; the reported time is per call.
"""

import numpy as np

from benchmarks import harness

TITLE = "Zoo train step vs its linear floor"
FEATURES, CLASSES, RATE = 24, 2, 0.05
FULL = {"batches": (32, 256), "steps_per_execution": 32, "depth": 4, "width": 256}
QUICK = {"batches": (32, 256), "steps_per_execution": 4, "depth": 2, "width": 64}
GOALS = {  # issue 20, by jit_compile
    True: "goal: selu_zoo snn >= 1/1.15 = 0.87 of the linear floor's speed (speed_vs), "
          "i.e. a step <= 1.15x the floor's",
    False: "goal: selu_zoo snn >= 0.9 of the linear floor's speed (speed_vs); outside XLA "
           "each SELUDense makes one XLA launch per step (its forward; the backward is one "
           "TensorFlow multiply)",
}


def _config(depth, width):
    from configs import snn

    config = snn.get_config()
    config.depth, config.width, config.dropout_rate = depth, width, RATE
    return config


def _info(x):
    from selu_zoo import datasets

    return datasets.DatasetInfo(
        name="synthetic", task="classification", num_classes=CLASSES, label_names=("0", "1"),
        feature_names=None, feature_shape=(FEATURES,), num_examples={"train": len(x)},
        mean=x.mean(0), variance=x.var(0))


def _model(kind, config, info):
    """The `snn` task model (``kind="selu_zoo"``), or the same task around a stock Keras
    (``"keras"``) or linear, dropout-free (``"linear"``) stack."""
    import keras

    from models import common, snn

    if kind == "selu_zoo":
        return snn.build_snn(config, info)
    inputs, h = common.standardized_input(config, info)
    for index in range(config.depth):
        if kind == "keras":
            h = keras.layers.Dense(config.width, "selu", kernel_initializer="lecun_normal")(h)
            h = keras.layers.AlphaDropout(RATE, seed=config.seed + index)(h)
        else:
            h = keras.layers.Dense(config.width, kernel_initializer="lecun_normal")(h)
    return common.supervised_task(inputs, h, info, name=kind)


def _train_call(model, x, y, batch, steps_per_execution, jit_compile):
    """One call of the model's Keras train function (``steps_per_execution`` steps)."""
    import keras
    import tensorflow as tf

    model.compile(optimizer=keras.optimizers.Adam(3e-4), jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(
        batch, drop_remainder=True).cache().repeat().prefetch(tf.data.AUTOTUNE)
    iterator = iter(batches)
    model.make_train_function()
    return lambda: model.train_function(iterator)


def build(settings):
    sizes = QUICK if settings.mode == "quick" else FULL
    spe = sizes["steps_per_execution"]
    rng = np.random.default_rng(0)
    rows = max(sizes["batches"]) * spe * 2
    x = rng.normal(size=(rows, FEATURES)).astype("float32")
    y = (x[:, :3].sum(1) > 0).astype("int32")
    config, info = _config(sizes["depth"], sizes["width"]), _info(x)
    comparisons = []
    for jit_compile, mode in ((True, "XLA"), (False, "graph")):
        for batch in sizes["batches"]:
            candidates = [harness.Candidate(f"{label} ({mode}, batch {batch})", _train_call(
                _model(kind, config, info), x, y, batch, spe, jit_compile))
                for kind, label in (("linear", "linear floor"), ("selu_zoo", "selu_zoo snn"),
                                    ("keras", "stock Keras"))]
            comparisons.append(harness.Comparison(
                name=f"snn train step, batch {batch}, jit_compile={jit_compile}",
                candidates=candidates,
                references=[candidates[0].name, candidates[2].name],
                items_per_call=batch * spe, item_name="examples",
                params={"batch": batch, "steps_per_execution": spe, "depth": config.depth,
                        "width": config.width, "features": FEATURES, "classes": CLASSES,
                        "dropout_rate": RATE, "optimizer": "Adam(3e-4)",
                        "jit_compile": jit_compile},
                notes=[GOALS[jit_compile]]))
    return comparisons
