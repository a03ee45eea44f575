"""Serving endpoints: named-input, dict-output functions that an export writes as signatures.

A `selu_zoo.tasks.Task` lists its own endpoints; `serving_endpoints` gives them for any Keras
model, and a generic ``serving_default`` for models that are not tasks (``Sequential``,
functional models with unnamed inputs or several outputs).
"""

import dataclasses
import re
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from selu_zoo.tasks.base import SERVING_DEFAULT

_HALF = (tf.float16, tf.bfloat16)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One exported function.

    Attributes:
      name: signature name.
      fn: takes one tensor per entry of ``input_signature`` (positionally) and returns a dict
        of float tensors; traceable with ``autograph=False``. The inputs' shapes are checked
        when it runs (a rank-1 batch would otherwise broadcast through a standardization
        layer and come back as one example).
      input_signature: `tf.TensorSpec`s with names; the batch dimension is ``None``.
    """

    name: str
    fn: Callable
    input_signature: tuple

    def __post_init__(self):
        specs, fn = self.input_signature, self.fn

        def checked(*args):
            return fn(*[tf.ensure_shape(tf.convert_to_tensor(a), spec.shape, name=spec.name)
                        for a, spec in zip(args, specs)])

        object.__setattr__(self, "fn", checked)

    @property
    def input_names(self):
        """The names of the inputs, in order."""
        return tuple(spec.name for spec in self.input_signature)

    def __call__(self, inputs):
        """Runs ``fn`` eagerly on a dict of arrays; returns a dict of NumPy arrays."""
        args = [tf.convert_to_tensor(inputs[spec.name], spec.dtype)
                for spec in self.input_signature]
        return {k: np.asarray(v) for k, v in self.fn(*args).items()}


def as_float32(tensor):
    """Half-precision tensors cast to float32 (serving outputs are float32); others as they are."""
    return tf.cast(tensor, tf.float32) if tensor.dtype in _HALF else tensor


def input_spec(keras_tensor, name):
    """A `tf.TensorSpec` named ``name`` with a ``None`` batch dimension for a Keras tensor."""
    shape = (None, *tuple(keras_tensor.shape)[1:])
    return tf.TensorSpec(shape, tf.as_dtype(keras_tensor.dtype), name=name)


def _clean(name, fallback):
    """``name`` if it is a valid signature key (letters, digits, ``_``), else ``fallback``."""
    name = str(name or "")
    return name if _NAME.match(name) else fallback


# Names Keras gives inputs nobody named; they change between processes and after loading.
_AUTOMATIC = re.compile(r"(keras_tensor|input_layer|input)(_\d+)?\Z")


def _input_name(model, tensor, index):
    """The name a user gave an input (its ``keras.Input(name=...)``), else ``input_<index>``."""
    layers = [layer.name for layer in getattr(model, "layers", ())
              if isinstance(layer, keras.layers.InputLayer) and layer.output is tensor]
    name = layers[0] if layers else tensor.name
    return f"input_{index}" if _AUTOMATIC.match(name or "") else _clean(name, f"input_{index}")


def _model_inputs(model):
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"model {model.name!r} has no known inputs: export a functional model "
            "(keras.Input -> layers -> keras.Model) or call the model once on a batch first")
    return list(inputs)


def generic_endpoints(model):
    """A ``serving_default`` endpoint for any built Keras model: one output per model output.

    Input names are the names given with ``keras.Input(name=...)`` where those are valid
    signature keys, else ``input_<i>`` (the same in memory and after loading); outputs are keyed by the output layers' names (dict outputs keep their
    keys), else ``output_<i>``.

    Args:
      model: a built Keras model (functional, ``Sequential``, or subclassed and called once).

    Returns:
      A one-element tuple of `Endpoint`.

    Raises:
      ValueError: if the model's inputs are unknown.
    """
    inputs = _model_inputs(model)
    names = [_input_name(model, t, i) for i, t in enumerate(inputs)]
    if len(set(names)) != len(names):
        names = [f"input_{i}" for i in range(len(inputs))]
    specs = tuple(input_spec(t, n) for t, n in zip(inputs, names))
    output_names = list(getattr(model, "output_names", None) or [])

    def call(*args):
        outputs = model(args[0] if len(args) == 1 else list(args), training=False)
        if isinstance(outputs, dict):
            return {_clean(k, f"output_{i}"): as_float32(v)
                    for i, (k, v) in enumerate(outputs.items())}
        flat = tf.nest.flatten(outputs)
        keys = [_clean(n, f"output_{i}") for i, n in enumerate(output_names)]
        if len(keys) != len(flat) or len(set(keys)) != len(keys):
            keys = [f"output_{i}" for i in range(len(flat))]
        return {k: as_float32(v) for k, v in zip(keys, flat)}

    return (Endpoint(SERVING_DEFAULT, call, specs),)


def serving_endpoints(model):
    """The endpoints an export writes for ``model``, the default one first.

    Args:
      model: a `selu_zoo.tasks.Task` (its own endpoints) or any built Keras model
        (`generic_endpoints`).

    Returns:
      A tuple of `Endpoint`.
    """
    own = getattr(model, "serving_endpoints", None)
    return tuple(own()) if callable(own) else generic_endpoints(model)


def signature_names(endpoints):
    """Every signature name a SavedModel of ``endpoints`` has (the default is also
    ``serving_default``)."""
    names = [e.name for e in endpoints]
    return names if SERVING_DEFAULT in names else names + [SERVING_DEFAULT]


def find(endpoints, name):
    """The endpoint called ``name`` (``serving_default`` is the first one).

    Raises:
      KeyError: if there is none.
    """
    if name == SERVING_DEFAULT:
        return endpoints[0]
    for endpoint in endpoints:
        if endpoint.name == name:
            return endpoint
    raise KeyError(f"no endpoint {name!r}; have {[e.name for e in endpoints]}")

