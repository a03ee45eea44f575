"""Inference latency of one zoo model: Keras call vs SavedModel signature vs TFLite interpreter.

Needs `selu_zoo.export`, which lands separately: until it is importable (and provides the
functions named in `_EXPORT_HOOK`) the group is skipped with the reason logged and stored in
its JSON. THE HOOK: when the export module lands, check that `_EXPORT_HOOK` names its
functions and that `_export` calls them with the right arguments; nothing else should change.
"""

import importlib
import os
import tempfile

import numpy as np

from benchmarks import harness

TITLE = "Inference latency (SNN MLP)"
BATCHES = (1, 256)

# selu_zoo.export functions this benchmark calls: (SavedModel writer, TFLite writer).
_EXPORT_HOOK = ("export_saved_model", "export_tflite")


def _export_module():
    import selu_zoo

    try:
        module = importlib.import_module("selu_zoo.export")
    except ImportError as error:
        raise harness.Skip(f"selu_zoo.export is not importable ({error}); the export module "
                           f"lands separately") from error
    package = os.path.dirname(os.path.abspath(selu_zoo.__file__))
    if not os.path.abspath(module.__file__).startswith(package + os.sep):
        # e.g. an editable install of another checkout resolving the submodule: its export
        # code would be measured against this checkout's layers
        raise harness.Skip(f"selu_zoo.export resolves to {module.__file__}, outside the "
                           f"benchmarked selu_zoo package ({package})")
    missing = [name for name in _EXPORT_HOOK if not callable(getattr(module, name, None))]
    if missing:
        raise harness.Skip(f"selu_zoo.export has no {', '.join(missing)}: update _EXPORT_HOOK "
                           f"in benchmarks/inference.py")
    return module


def _model():
    import keras

    from selu_zoo.layers import SELUDense

    inputs = keras.Input((784,), name="x")
    h = inputs
    for _ in range(4):
        h = SELUDense(512, dropout_rate=0.05)(h)
    return keras.Model(inputs, {"logits": keras.layers.Dense(10)(h)})


def _export(export, model, directory):
    """HOOK: writes the SavedModel and the TFLite file; returns their paths."""
    saved_model = os.path.join(directory, "saved_model")
    tflite = os.path.join(directory, "model.tflite")
    getattr(export, _EXPORT_HOOK[0])(model, saved_model)
    getattr(export, _EXPORT_HOOK[1])(saved_model, tflite)
    return saved_model, tflite


def _tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def build(settings):
    export = _export_module()
    import tensorflow as tf

    model = _model()
    directory = tempfile.mkdtemp(prefix="selu_zoo_bench_")
    saved_model_path, tflite_path = _export(export, model, directory)
    signature = tf.saved_model.load(saved_model_path).signatures["serving_default"]
    comparisons = []
    for batch in BATCHES:
        x = np.random.default_rng(0).normal(size=(batch, 784)).astype("float32")
        interpreter = _tflite_interpreter(tflite_path)
        input_index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(input_index, x.shape)
        interpreter.allocate_tensors()
        output_index = interpreter.get_output_details()[0]["index"]

        def tflite_call(interpreter=interpreter, x=x):
            interpreter.set_tensor(input_index, x)
            interpreter.invoke()
            return interpreter.get_tensor(output_index)

        x_tensor = tf.constant(x)
        comparisons.append(harness.Comparison(
            name=f"batch {batch}",
            candidates=[
                harness.Candidate("Keras call", lambda x=x_tensor: model(x, training=False)),
                harness.Candidate("SavedModel signature", lambda x=x_tensor: signature(x=x)),
                harness.Candidate("TFLite interpreter", tflite_call),
            ],
            references=["Keras call"], items_per_call=batch,
            params={"batch": batch, "model": "4 x SELUDense(512) + Dense(10)"}))
    return comparisons
