"""SavedModels for TensorFlow Serving: writing a model's endpoints, and loading them back."""

import contextlib
import logging
import os

import keras
import tensorflow as tf

from selu_zoo import ops, tasks


def save_options():
    """SaveOptions for serving: custom gradients (XLA-compiled in selu_zoo.ops) stay out."""
    return tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def write_saved_model(model, path, *, endpoints=None, tflite_lowering=False,
                      serving_form=ops.DEFAULT_SERVING_FORM):
    """Writes a model's endpoints as a SavedModel with `keras.export.ExportArchive`.

    Inputs keep their names and dtypes, outputs are dicts, batch dimensions are ``None``; the
    first endpoint is also ``serving_default``; custom gradients stay out (`save_options`).

    Args:
      model: a Keras model.
      path: the folder to write (any tf.io.gfile path; must not exist or be empty).
      endpoints: the `selu_zoo.tasks.Endpoint`s; `selu_zoo.tasks.serving_endpoints` when None.
      tflite_lowering: trace inside `selu_zoo.ops.tflite_lowering()`, for TFLite conversion.
      serving_form: how SELU is traced for serving (`selu_zoo.ops.SERVING_FORMS`).

    Returns:
      The endpoints written.
    """
    endpoints = tuple(endpoints or tasks.serving_endpoints(model))
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, endpoint.fn, list(endpoint.input_signature))
    lowering = ops.tflite_lowering() if tflite_lowering else contextlib.nullcontext()
    with ops.serving_lowering(serving_form), lowering:  # tracing happens in write_out
        archive.write_out(os.fspath(path), options=save_options(), verbose=False)
    return endpoints


class _Without(logging.Filter):
    def __init__(self, phrase):
        super().__init__()
        self.phrase = phrase

    def filter(self, record):
        return self.phrase not in record.getMessage()


def load_saved_model(saved_model_dir):
    """``tf.saved_model.load`` of an exported SavedModel, without TF's warning that its
    custom gradients were not saved (left out on purpose: they are XLA-compiled)."""
    absl_logger = logging.getLogger("absl")
    quiet = _Without("unsaved custom gradients")
    absl_logger.addFilter(quiet)
    try:
        return tf.saved_model.load(os.fspath(saved_model_dir))
    finally:
        absl_logger.removeFilter(quiet)

