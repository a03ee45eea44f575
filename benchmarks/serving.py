"""Serving: zoo SavedModels per SELU serving form against the same network from stock layers.

Two parts:

* **SELU forms, graph mode.** Candidate formulas for the activation outside XLA (where stock
  TensorFlow Serving runs), timed on one large tensor, each with its worst relative error on
  a dense float32 scan against float64 (TensorFlow kernels and XLA): the search for an exact
  form as fast as TensorFlow's fused ``Selu`` kernel.
* **SavedModels.** Two networks, each exported with `keras.export.ExportArchive` (input
  ``features`` with a ``None`` batch, saved without custom gradients, as
  `selu_zoo.export` writes them) once per form of `selu_zoo.ops.SERVING_FORMS` (traced inside
  `selu_zoo.ops.serving_lowering`), once without any lowering (`ops.selu` as a Keras call
  traces it), and once as its *stock twin*: the same weights in ``keras.layers.Dense(...,
  activation="selu")`` layers (loaded twice: the second copy is a noise control, the
  same graph timed as a separate candidate). Each is loaded with `tf.saved_model.load` and its
  ``serving_default`` signature called in graph mode, interleaved, at batch 1, 32, 256 and
  4096 (quick mode: the ``snn``-like model at 1 and 256, no unlowered artifact, no XLA
  scan). Rows are real features: scikit-learn's digits (64 features) for the 4 x 256 MLP,
  breast_cancer (30) for the ``snn``-like classifier. The end-to-end error of every artifact
  is measured on all rows of its dataset against a float64 NumPy evaluation of the same model
  (the float32 weights, standardization constants and inputs, evaluated in float64).

Weights are LeCun-normal initializations from a fixed seed (a trained SNN's pre-activations
have the same order of magnitude); biases are small random values so they are not all zero.
"""

import contextlib
import os
import tempfile

import numpy as np

from benchmarks import harness

TITLE = "Serving: SavedModel throughput and error per SELU form"
BATCHES = (1, 32, 256, 4096)
QUICK_BATCHES = (1, 256)
STOCK = "stock Keras layers"
UNLOWERED = "exact, no lowering context"
CONTROL = "stock Keras layers, loaded again (noise control)"
BOUND = 3e-7


# --- SELU forms outside XLA ------------------------------------------------------------------


def _forms():
    """Candidate SELU formulas: name -> function of a float32 tensor (forward only)."""
    import tensorflow as tf

    from selu_zoo import SCALE, SCALE_ALPHA, ops
    from selu_zoo.ops import tensorflow_ops

    s, sa = SCALE, SCALE_ALPHA

    def lowered(form):
        def fn(x):
            with ops.serving_lowering(form):
                return ops.selu(x)
        return fn

    def expm1(x):
        return tf.where(x > 0, s * x, sa * tf.math.expm1(x))

    def relu_expm1(x):
        return s * tf.nn.relu(x) + sa * tf.math.expm1(tf.minimum(x, 0.0))

    def tanh_identity(x):  # expm1(x) = tanh(x / 2) * (exp(x) + 1)
        return tf.where(x > 0, s * x, sa * tf.tanh(0.5 * x) * (tf.exp(x) + 1.0))

    def float64_expm1(x):
        return tf.cast(expm1(tf.cast(x, tf.float64)), tf.float32)

    def polynomial_and_exp(x):
        return tensorflow_ops._selu_and_derivative(x)[0]  # the fused training op's SELU (XLA-only in the library)

    return {
        "fused: tf.nn.selu": lowered("fused"),
        "exact: polynomial near 0 + Selu": lowered("exact"),
        "expm1 (the exact form until now)": expm1,
        "relu + expm1(min(x, 0))": relu_expm1,
        "tanh identity": tanh_identity,
        "polynomial + exp, all of it": polynomial_and_exp,
        "float64 expm1": float64_expm1,
    }


def dense_scan(quick=False):
    """The scan of issue 14: [-1, -1e-4] evenly, magnitudes down to 1e-30, and [-88, 88].

    Returns:
      A float32 NumPy array (2M values, 200k when quick).
    """
    n = 200_000 if quick else 2_000_000
    return np.concatenate([
        -np.linspace(1e-4, 1.0, n // 2),
        -np.logspace(-30, 0, n // 4),
        np.linspace(-88.0, 88.0, n // 4),
    ]).astype(np.float32)


def selu_float64(x):
    """The paper's SELU in float64 NumPy."""
    from selu_zoo import SCALE, SCALE_ALPHA

    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        return np.where(x > 0, SCALE * x, SCALE_ALPHA * np.expm1(np.minimum(x, 0.0)))


def scan_error(y, x):
    """Worst relative error of ``y = selu(x)`` where the true value is normal, and where."""
    reference = selu_float64(x)
    normal = np.abs(reference) >= np.finfo(np.float32).tiny
    y = np.asarray(y, np.float64)
    relative = np.abs(y[normal] - reference[normal]) / np.abs(reference[normal])
    worst = int(np.argmax(relative))
    return {"worst": float(relative[worst]), "at": float(x[normal][worst]),
            "over_bound": int(np.sum(relative > BOUND))}


def _forms_comparison(settings):
    import tensorflow as tf

    quick = settings.mode == "quick"
    size = 1 << 16 if quick else 1 << 20
    x = tf.random.stateless_normal([size], seed=[1, 2])
    scan = dense_scan(quick)
    scan_tensor = tf.constant(scan)
    modes = (("tensorflow", False),) if quick else (("tensorflow", False), ("xla", True))
    candidates, errors, notes = [], {}, []
    for name, fn in _forms().items():
        graph = tf.function(fn, autograph=False)
        candidates.append(harness.Candidate(name, lambda graph=graph: graph(x)))
        errors[name] = {
            mode: scan_error(tf.function(fn, autograph=False, jit_compile=jit)(scan_tensor), scan)
            for mode, jit in modes}
        notes.append(f"{name}: worst relative error on the scan " + ", ".join(
            f"{e['worst']:.3g} at {e['at']:.4g} ({e['over_bound']} over {BOUND:g}) {mode}"
            for mode, e in errors[name].items()) + ".")
    notes.append(
        f"Scan: {scan.size:,} float32 values, half evenly over [-1, -1e-4], a quarter "
        "log-spaced from -1e-30 to -1, a quarter evenly over [-88, 88]; 'tensorflow' is "
        "tf.function on the whole tensor (TensorFlow's vectorized CPU kernels), 'xla' the same "
        "under jit_compile. Grappler rewrites exp(x) - 1 into Expm1 in graph mode, so the "
        "forms built on exp meet TensorFlow's Expm1 kernel there.")
    return harness.Comparison(
        name="SELU forms, forward, graph mode", candidates=candidates,
        references=["fused: tf.nn.selu"],
        params={"elements": size, "dtype": "float32", "scan_values": int(scan.size),
                "scan_error": errors},
        notes=notes)


# --- SavedModels ---------------------------------------------------------------------------


def _standardized(features):
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    return ((features - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def _mlp_model():
    """The issue's MLP: 4 x SELUDense(256) on 64 inputs (fed standardized digits features)."""
    import keras

    from selu_zoo.layers import SELUDense

    inputs = keras.Input((64,), name="features")
    h = inputs
    for i in range(4):
        h = SELUDense(256, name=f"selu_dense_{i}")(h)
    return keras.Model(inputs, h, name="mlp_4x256")


def _snn_model(mean, variance):
    """The `snn` layout: standardize -> 4 x SELUDense(256, alpha dropout 0.05) -> logits."""
    import keras

    from selu_zoo.layers import SELUDense

    inputs = keras.Input((mean.size,), name="features")
    h = keras.layers.Normalization(mean=mean, variance=variance, dtype="float32",
                                   name="standardize")(inputs)
    for i in range(4):
        h = SELUDense(256, dropout_rate=0.05, seed=i, name=f"selu_dense_{i}")(h)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(h), name="snn")


def _stock_twin(model):
    """The same network from stock Keras layers (Dense(activation="selu")), same weights."""
    import keras

    from selu_zoo.layers import SELUDense

    inputs = keras.Input(model.input.shape[1:], name="features")
    h = inputs
    for layer in model.layers[1:]:
        if isinstance(layer, SELUDense):
            twin = keras.layers.Dense(layer.units, activation="selu", name=layer.name)
        elif isinstance(layer, keras.layers.Normalization):
            twin = keras.layers.Normalization(mean=np.ravel(layer.mean),
                                              variance=np.ravel(layer.variance),
                                              dtype="float32", name=layer.name)
        else:
            twin = layer.__class__.from_config(layer.get_config())
        h = twin(h)
        if layer.weights:
            twin.set_weights(layer.get_weights())
    return keras.Model(inputs, h, name=f"{model.name}_stock")


def _randomize_biases(model, rng):
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype(np.float32))


def _endpoint(model):
    import tensorflow as tf

    if model.output_names == ["logits"]:
        def serve(features):
            logits = model(features, training=False)
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}
    else:
        def serve(features):
            return {"output": model(features, training=False)}
    return serve


def export_saved_model(model, path, form=None):
    """Writes ``model`` as the zoo's exports do, traced inside ``serving_lowering(form)``.

    Args:
      model: a functional Keras model with one input.
      path: directory to write.
      form: one of `selu_zoo.ops.SERVING_FORMS`, or None for no lowering context.

    Returns:
      ``path``. Raises `selu_zoo.export.ServingGraphError` if stock TensorFlow Serving
      could not run the result.
    """
    import keras
    import tensorflow as tf

    from selu_zoo import ops
    from selu_zoo.export import check_serving_graph

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, *model.input.shape[1:]), tf.float32, name="features")
    archive.add_endpoint("serving_default", _endpoint(model), [spec])
    context = contextlib.nullcontext() if form is None else ops.serving_lowering(form)
    with context:  # traced in write_out
        archive.write_out(path, options=tf.saved_model.SaveOptions(
            experimental_custom_gradients=False), verbose=False)
    check_serving_graph(path)
    return path


def float64_forward(model, features):
    """The model evaluated in float64 NumPy from its float32 weights; returns a dict."""
    import keras

    from selu_zoo.layers import SELUDense

    h = np.asarray(features, np.float32).astype(np.float64)
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.Normalization):
            mean = np.asarray(layer.mean, np.float64)
            std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float64)),
                             keras.config.epsilon())
            h = (h - mean) / std
        elif isinstance(layer, (SELUDense, keras.layers.Dense)):
            z = h @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()
            h = selu_float64(z) if isinstance(layer, SELUDense) else z
        else:
            raise ValueError(f"no float64 evaluation for layer {layer.name!r}")
    if model.output_names == ["logits"]:
        shifted = np.exp(h - h.max(axis=1, keepdims=True))
        return {"logits": h, "probabilities": shifted / shifted.sum(axis=1, keepdims=True)}
    return {"output": h}


def served_outputs(signature, features):
    """A signature's outputs on all rows, as float64 NumPy arrays."""
    import tensorflow as tf

    outputs = signature(features=tf.constant(features))
    return {key: value.numpy().astype(np.float64) for key, value in outputs.items()}


def end_to_end_error(served, reference, exact=None):
    """Errors of served outputs against the float64 evaluation (and the exact artifact's).

    Args:
      served: `served_outputs` of the artifact.
      reference: `float64_forward` of the model.
      exact: `served_outputs` of the exact form's artifact, or None.

    Returns:
      ``{<output>_max_abs, <output>_max_rel (relative to max(|reference|, 1e-3)),
      <output>_max_abs_vs_exact, class_changes}``, the last for classifiers only.
    """
    errors = {}
    for key, expected in reference.items():
        diff = np.abs(served[key] - expected)
        errors[f"{key}_max_abs"] = float(diff.max())
        errors[f"{key}_max_rel"] = float((diff / np.maximum(np.abs(expected), 1e-3)).max())
        if exact is not None:
            errors[f"{key}_max_abs_vs_exact"] = float(np.abs(served[key] - exact[key]).max())
    if "logits" in reference:
        errors["class_changes"] = int(np.sum(
            served["logits"].argmax(1) != reference["logits"].argmax(1)))
    return errors


def optimized_op_counts(signature):
    """Op type -> count in a signature's graph after grappler's default passes.

    What TensorFlow (and TF Serving) actually runs: it shows whether two artifacts run the same
    kernels. Uses TensorFlow's internal grappler entry point (benchmarks only).
    """
    import collections

    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    meta_graph = tf.compat.v1.train.export_meta_graph(
        graph_def=signature.graph.as_graph_def(), graph=signature.graph)
    fetches = meta_graph.collection_def["train_op"].node_list.value
    fetches.extend(output.name for output in signature.outputs)
    graph = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta_graph)
    counts = collections.Counter(node.op for node in graph.node)
    for function in graph.library.function:
        counts.update(node.op for node in function.node_def)
    return {op: n for op, n in sorted(counts.items()) if op not in ("Placeholder", "NoOp")}


def _rows(features, batch):
    """``batch`` rows of real features (cycled when the dataset has fewer)."""
    return np.resize(features, (batch, features.shape[1])).astype(np.float32)


def _model_comparisons(label, description, model, features, batches, directory, quick):
    import tensorflow as tf

    from selu_zoo import ops

    artifacts = {STOCK: export_saved_model(_stock_twin(model), os.path.join(directory, "stock"))}
    for form in ops.SERVING_FORMS:
        artifacts[form] = export_saved_model(model, os.path.join(directory, form), form)
    if not quick:
        artifacts[UNLOWERED] = export_saved_model(model, os.path.join(directory, "unlowered"))
    signatures = {name: tf.saved_model.load(path).signatures["serving_default"]
                  for name, path in artifacts.items()}
    # The same stock artifact loaded a second time: its ratio to the first shows the noise.
    control = tf.saved_model.load(artifacts[STOCK]).signatures["serving_default"]
    reference = float64_forward(model, features)
    outputs = {name: served_outputs(sig, features) for name, sig in signatures.items()}
    errors = {name: end_to_end_error(served, reference, outputs["exact"])
              for name, served in outputs.items()}
    key = "logits" if "logits" in reference else "output"
    note = (f"End-to-end error on all {len(features)} rows, max |{key} - float64| (relative "
            f"to max(|float64|, 1e-3); max |{key} - exact artifact's|): " + ", ".join(
                f"{name} {e[key + '_max_abs']:.3g} ({e[key + '_max_rel']:.3g}; "
                f"{e[key + '_max_abs_vs_exact']:.3g})" for name, e in errors.items()) + ".")
    kernels = {name: optimized_op_counts(sig) for name, sig in signatures.items()}
    same = [name for name in kernels if name != STOCK and kernels[name] == kernels[STOCK]]
    kernel_note = (f"After grappler, {', '.join(same) or 'no artifact'} runs exactly the ops of "
                   f"the {STOCK} ({_format_counts(kernels[STOCK])}); any speed difference "
                   "between them is measurement noise. " + "; ".join(
                       f"{name}: {_format_counts(counts)}" for name, counts in kernels.items()
                       if name not in same and name != STOCK) + ".")
    comparisons = []
    for batch in batches:
        x = tf.constant(_rows(features, batch))
        candidates = [harness.Candidate(name, lambda sig=sig, x=x: sig(features=x))
                      for name, sig in {**signatures, CONTROL: control}.items()]
        comparisons.append(harness.Comparison(
            name=f"{label}, batch {batch}", candidates=candidates, references=[STOCK],
            items_per_call=batch,
            params={"model": description, "batch": batch, "rows": len(features),
                    "error_vs_float64": errors, "ops_after_grappler": kernels},
            notes=[note, kernel_note]))
    return comparisons


def _format_counts(counts):
    return ", ".join(f"{n} {op}" for op, n in counts.items() if op not in ("Const", "Identity",
                                                                          "ReadVariableOp"))


def _datasets():
    from sklearn.datasets import load_breast_cancer, load_digits

    return load_digits().data, load_breast_cancer().data


def build(settings):
    import keras

    quick = settings.mode == "quick"
    batches = QUICK_BATCHES if quick else BATCHES
    digits, breast_cancer = _datasets()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    comparisons = [_forms_comparison(settings)]
    directory = tempfile.mkdtemp(prefix="selu_zoo_serving_")
    models = []
    if not quick:
        mlp = _mlp_model()
        _randomize_biases(mlp, rng)
        models.append(("MLP 4 x 256 on digits", mlp, _standardized(digits),
                       "4 x SELUDense(256) on 64 standardized digits features"))
    features = breast_cancer.astype(np.float32)
    snn = _snn_model(features.mean(axis=0), features.var(axis=0))
    _randomize_biases(snn, rng)
    models.append(("snn on breast_cancer", snn, features,
                   "Normalization, 4 x SELUDense(256, dropout 0.05), Dense(2) logits, softmax"))
    for index, (label, model, rows, description) in enumerate(models):
        comparisons += _model_comparisons(label, description, model, rows, batches,
                                          os.path.join(directory, str(index)), quick)
    return comparisons
