"""SavedModels for TensorFlow Serving: writing a model's endpoints, loading them back, and
`check_serving_graph`: will stock TensorFlow Serving run one?

Stock ``tensorflow_model_server`` runs XLA only behind an experimental flag, so a graph that
reaches a ``_XlaMustCompile`` function fails on its first request; and it links TensorFlow's
own kernels only, so a custom op fails to load.
"""

import contextlib
import functools
import logging
import os

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from selu_zoo import ops, storage, tasks


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


def _without_custom_gradient_warning(record):
    return "unsaved custom gradients" not in record.getMessage()


def load_saved_model(saved_model_dir):
    """``tf.saved_model.load`` of an exported SavedModel, without TF's warning that its
    custom gradients were not saved (left out on purpose: they are XLA-compiled)."""
    absl_logger = logging.getLogger("absl")
    absl_logger.addFilter(_without_custom_gradient_warning)
    try:
        return tf.saved_model.load(os.fspath(saved_model_dir))
    finally:
        absl_logger.removeFilter(_without_custom_gradient_warning)


# Attributes that ask for XLA compilation of a function or of a call.
XLA_ATTRIBUTES = ("_XlaMustCompile", "_XlaCompile")


class ServingGraphError(ValueError):
    """A SavedModel that stock TensorFlow Serving would refuse or fail on."""


@functools.lru_cache(maxsize=1)
def core_ops():
    """The names of TensorFlow's core ops: those with a generated wrapper in ``tf.raw_ops``.

    ``tf.raw_ops`` is generated from TensorFlow's own op registrations at build time, so a
    loaded custom op library does not add to it; it also leaves out the XLA ops.

    Returns:
      A frozenset of op names.
    """
    return frozenset(name for name in dir(tf.raw_ops) if not name.startswith("_"))


def _is_true(attr_value):
    """Whether an AttrValue proto is set to a true value (bools, or anything non-empty)."""
    kind = attr_value.WhichOneof("value")
    return bool(getattr(attr_value, kind)) if kind else False


def read_saved_model_proto(saved_model_dir):
    """Parses ``<saved_model_dir>/saved_model.pb``.

    Raises:
      ServingGraphError: if the file is missing or is not a SavedModel proto.
    """
    path = storage.join(os.fspath(saved_model_dir), "saved_model.pb")
    try:
        data = storage.read_bytes(path)
    except storage.StorageError as error:
        raise ServingGraphError(f"no SavedModel at {saved_model_dir}: {error}") from None
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(data)
    except Exception as error:  # protobuf raises DecodeError, a bare Exception subclass
        raise ServingGraphError(f"{path} is not a SavedModel proto: {error}") from None
    return proto


def _problems_in(nodes, where, function_names, allowed):
    for node in nodes:
        for attr in XLA_ATTRIBUTES:
            if attr in node.attr and _is_true(node.attr[attr]):
                yield f"{where}: node {node.name!r} ({node.op}) has {attr}=true"
        if node.op in function_names:
            continue  # a call of a function in the library; the function is checked itself
        if node.op.startswith(("Xla", "_Xla")) or node.op not in allowed:
            yield f"{where}: node {node.name!r} uses op {node.op!r}, not a core TensorFlow op"


def serving_graph_problems(saved_model_dir, allowed_ops=None):
    """The problems `check_serving_graph` would raise, one line each (empty if none).

    Args:
      saved_model_dir: directory holding ``saved_model.pb``.
      allowed_ops: op names accepted; defaults to `core_ops()`.
    """
    allowed = core_ops() if allowed_ops is None else frozenset(allowed_ops)
    problems = []
    for index, meta_graph in enumerate(read_saved_model_proto(saved_model_dir).meta_graphs):
        graph = meta_graph.graph_def
        function_names = {f.signature.name for f in graph.library.function}
        problems += _problems_in(graph.node, f"meta_graph[{index}] graph", function_names,
                                 allowed)
        for function in graph.library.function:
            name = function.signature.name
            for attr in XLA_ATTRIBUTES:
                if attr in function.attr and _is_true(function.attr[attr]):
                    problems.append(f"function {name!r} has {attr}=true (jit_compile)")
            problems += _problems_in(function.node_def, f"function {name!r}", function_names,
                                     allowed)
    return problems


def check_serving_graph(saved_model_dir, allowed_ops=None):
    """Raises unless every function in a SavedModel can run on stock TensorFlow Serving.

    In every meta graph and every function of its library (custom gradients included), no
    function or node may carry ``_XlaMustCompile`` or ``_XlaCompile`` set to true, and every
    node's op must be a core op (`core_ops()`) or a call of a library function.

    Args:
      saved_model_dir: directory holding ``saved_model.pb``.
      allowed_ops: op names accepted; defaults to `core_ops()`.

    Raises:
      ServingGraphError: listing every problem found (at most 20 lines, then a count).
    """
    problems = serving_graph_problems(saved_model_dir, allowed_ops)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"]
                                 if len(problems) > 20 else [])
        raise ServingGraphError(
            f"{saved_model_dir} cannot be served by stock TensorFlow Serving:\n  "
            + "\n  ".join(shown))
