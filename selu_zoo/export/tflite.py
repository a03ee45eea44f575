"""TFLite: conversion from a SavedModel (builtin ops only), inspection of the flatbuffer, runs.

The SavedModel converted here is traced inside `selu_zoo.ops.tflite_lowering()`, so SELU
reaches the converter as ``tf.nn.elu`` and lowers to the exact builtin ``ELU`` (``expm1``
would become ``EXP`` + ``SUB``, which cancels near 0). Only ``TFLITE_BUILTINS`` are allowed:
Flex (TF Select) kernels are not part of the standalone runtime.

Variants:

* ``float32``: plain conversion.
* ``float16``: weights stored as float16, dequantized to float32 at load; math in float32.
* ``int8``: post-training quantization calibrated on a representative dataset: weights and
  activations int8 where the converter has int8 kernels, float32 (with QUANTIZE / DEQUANTIZE
  around it) where it does not (ELU, for one) and where the caller asks (``float_nodes``:
  the input standardization); inputs and outputs stay float32.
"""

import collections
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

VARIANTS = ("float32", "float16", "int8")
FILE_SUFFIXES = {"float32": ".tflite", "float16": ".f16.tflite", "int8": ".int8.tflite"}

_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                  if not name.startswith("_")}
_FLOAT_TYPES = (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16)
_QUANTIZE_OPS = ("QUANTIZE", "DEQUANTIZE")


# Phrases of converter errors about ops the builtin runtime lacks.
_NON_BUILTIN_MARKERS = ("Flex", "TensorList", "TF Select", "custom op", "Custom ops",
                        "neither a custom op nor a flex op", "not supported")


class TFLiteConversionError(RuntimeError):
    """The graph cannot become a builtin-only TFLite model."""


def convert(saved_model_dir, signature_keys, variant="float32", representative_dataset=None,
            float_nodes=(), float_op_types=()):
    """Converts a SavedModel to a TFLite flatbuffer with builtin ops only.

    Args:
      saved_model_dir: the SavedModel (trace it inside `selu_zoo.ops.tflite_lowering()`).
      signature_keys: signatures to convert; each becomes a TFLite signature of the same name.
      variant: one of `VARIANTS`.
      representative_dataset: for ``"int8"``, a callable returning an iterator of
        ``(signature_key, {input_name: array})`` calibration samples.
      float_nodes: for ``"int8"``, output tensor names (as in the float model) of ops to
        leave in float32, e.g. the input standardization (see `tensor_names`).
      float_op_types: for ``"int8"``, builtin op names (``"SUB"``, ``"MUL"``) to leave in
        float32 everywhere.

    Returns:
      The flatbuffer as bytes.

    Raises:
      ValueError: for an unknown variant, or int8 without a representative dataset.
      TFLiteConversionError: if the graph needs ops outside the TFLite builtins (Flex,
        TensorList ops of a rolled RNN, custom ops) or the converter fails otherwise.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative_dataset is None:
            raise ValueError("int8 conversion needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
    try:
        with warnings.catch_warnings():
            # int8 calibration runs tf.lite.Interpreter internally, which warns it is deprecated.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            if variant == "int8" and (float_nodes or float_op_types):
                # The public way to quantize all but some ops: calibrate, then quantize with
                # a denylist (the debugger's own model instruments the same calibration).
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=representative_dataset,
                    debug_options=tf.lite.experimental.QuantizationDebugOptions(
                        denylisted_nodes=list(float_nodes) or None,
                        denylisted_ops=list(float_op_types) or None))
                content = debugger.get_nondebug_quantized_model()
            else:
                content = converter.convert()
    except Exception as error:  # ConverterError and friends; the message says which ops
        message = str(error)
        hint = ""
        if any(word in message for word in _NON_BUILTIN_MARKERS):
            hint = (" The graph needs ops outside the TFLite builtins (Flex/TF Select, custom "
                    "ops, or TensorList ops of a rolled RNN); build recurrent layers with "
                    "unroll=True and a fixed sequence length.")
        if len(message) > 2000:
            message = message[:2000] + " ..."
        raise TFLiteConversionError(
            f"TFLite {variant} conversion of {saved_model_dir} failed.{hint}\n{message}"
        ) from error
    problems = [op for op in op_summary(content)["ops"] if not _is_builtin_name(op)]
    if problems:
        raise TFLiteConversionError(f"the {variant} model contains non-builtin ops {problems}; "
                                    f"the standalone TFLite runtime cannot run them")
    return content


def _is_builtin_name(op_name):
    return not op_name.startswith(("CUSTOM:", "Flex"))


def _op_name(op_code):
    code = max(op_code.builtinCode, op_code.deprecatedBuiltinCode)
    if code == schema.BuiltinOperator.CUSTOM:
        custom = op_code.customCode
        return "CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))
    return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")


def op_summary(content):
    """Describes the operators of a TFLite flatbuffer, over all subgraphs (signatures).

    Args:
      content: the flatbuffer bytes.

    Returns:
      A dict with ``"ops"`` (op name -> count), ``"float_ops"`` (op name -> count of ops, other
      than QUANTIZE/DEQUANTIZE, that read or write a float tensor: for an int8 model, what
      stayed float) and ``"signatures"`` (signature key -> subgraph index).
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    names = [_op_name(code) for code in model.operatorCodes]
    ops, float_ops = collections.Counter(), collections.Counter()
    for subgraph in model.subgraphs:
        for operator in subgraph.operators or []:
            name = names[operator.opcodeIndex]
            ops[name] += 1
            tensors = [i for i in list(operator.inputs) + list(operator.outputs) if i >= 0]
            if name not in _QUANTIZE_OPS and any(
                    subgraph.tensors[i].type in _FLOAT_TYPES for i in tensors):
                float_ops[name] += 1
    signatures = {
        (s.signatureKey.decode() if isinstance(s.signatureKey, bytes) else s.signatureKey):
            s.subgraphIndex for s in (model.signatureDefs or [])}
    return {"ops": dict(sorted(ops.items())), "float_ops": dict(sorted(float_ops.items())),
            "signatures": signatures}


def tensor_names(content):
    """The names of all tensors of a TFLite flatbuffer, over all subgraphs, in order."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    return [t.name.decode() if isinstance(t.name, bytes) else t.name
            for subgraph in model.subgraphs for t in subgraph.tensors or []]


def operators(content):
    """Every operator of a TFLite flatbuffer, over all subgraphs, in order.

    Returns:
      A list of ``(op name, input tensor names, output tensor names)``.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    names = [_op_name(code) for code in model.operatorCodes]

    def tensor(subgraph, index):
        name = subgraph.tensors[index].name
        return name.decode() if isinstance(name, bytes) else name

    return [(names[op.opcodeIndex],
             [tensor(subgraph, i) for i in op.inputs if i >= 0],
             [tensor(subgraph, i) for i in op.outputs if i >= 0])
            for subgraph in model.subgraphs for op in subgraph.operators or []]


def make_interpreter(content, builtin_reference_kernels=False):
    """An interpreter for the flatbuffer: `ai_edge_litert`'s, else `tf.lite.Interpreter`.

    Args:
      content: the flatbuffer bytes.
      builtin_reference_kernels: use TFLite's builtin kernels without the default (XNNPACK)
        delegate.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - the test extra installs ai-edge-litert
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    resolver = (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_reference_kernels
                else OpResolverType.AUTO)
    return Interpreter(model_content=bytes(content), experimental_op_resolver_type=resolver)


def check_inputs(runner, signature_key, inputs):
    """Raises ValueError unless ``inputs`` match the signature's names, dtypes and shapes.

    TFLite itself checks dtypes but not ranks: FULLY_CONNECTED flattens its input, so a
    rank-1 array would silently run as one example. Dimensions of -1 (batch) match any size.
    """
    details = runner.get_input_details()
    if set(inputs) != set(details):
        raise ValueError(f"signature {signature_key!r} takes inputs {sorted(details)}, "
                         f"got {sorted(inputs)}")
    for name, detail in details.items():
        value = np.asarray(inputs[name])
        expected = tuple(int(d) for d in detail["shape_signature"])
        if value.dtype != detail["dtype"]:
            raise ValueError(f"input {name!r} of signature {signature_key!r} must be "
                             f"{np.dtype(detail['dtype']).name}, got {value.dtype.name}")
        if value.ndim != len(expected) or any(
                e != -1 and e != a for e, a in zip(expected, value.shape)):
            raise ValueError(f"input {name!r} of signature {signature_key!r} must have shape "
                             f"{tuple(None if d == -1 else d for d in expected)}, got "
                             f"{value.shape}")


def run_signature(interpreter, signature_key, inputs, batch_size=256):
    """Runs a signature on a dict of arrays, in batches; returns a dict of output arrays.

    Raises:
      ValueError: for missing or extra input names, or arrays of the wrong dtype or shape
        (see `check_inputs`).
    """
    runner = interpreter.get_signature_runner(signature_key)
    check_inputs(runner, signature_key, inputs)
    count = len(next(iter(inputs.values())))
    chunks = collections.defaultdict(list)
    for start in range(0, count, batch_size):
        batch = {k: np.ascontiguousarray(v[start:start + batch_size]) for k, v in inputs.items()}
        for name, value in runner(**batch).items():
            chunks[name].append(np.array(value))
    return {name: np.concatenate(parts) for name, parts in chunks.items()}
