"""Inference latency of one zoo-style model: Keras call vs SavedModel signature vs TFLite.

The model is exported with `selu_zoo.export.export_all` exactly as ``train.py`` exports (the
TF Serving SavedModel and the builtin-only float32 TFLite file), then each artifact is called
on the same batch.
"""

import tempfile

import numpy as np

from benchmarks import harness

TITLE = "Inference latency (SNN MLP)"
BATCHES = (1, 256)
_FEATURES = 784


def _model():
    import keras

    from selu_zoo.layers import SELUDense

    inputs = keras.Input((_FEATURES,), name="features")
    h = inputs
    for _ in range(4):
        h = SELUDense(512, dropout_rate=0.05)(h)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(h), name="bench_snn")


def _export(model, directory):
    """Writes the SavedModel and TFLite files as train.py does; returns their paths."""
    from selu_zoo import export

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, _FEATURES)).astype("float32")
    y = rng.integers(0, 10, size=256)
    result = export.export_all(model, directory, model.name, representative_data=x,
                               validation_data=(x, y))
    return result.files["saved_model"], result.files["tflite_float32"]


def _tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def build(settings):
    import tensorflow as tf

    model = _model()
    directory = tempfile.mkdtemp(prefix="selu_zoo_bench_")
    saved_model_path, tflite_path = _export(model, directory)
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
                harness.Candidate("SavedModel signature", lambda x=x_tensor: signature(features=x)),
                harness.Candidate("TFLite interpreter", tflite_call),
            ],
            references=["Keras call"], items_per_call=batch,
            params={"batch": batch, "model": "4 x SELUDense(512) + Dense(10)"}))
    return comparisons
