"""TFLite: conversion from a SavedModel (builtin ops only), inspection of the flatbuffer, runs.

The flatbuffer is inspected with public TensorFlow APIs only: ``tf.lite.experimental.Analyzer``
describes every subgraph's operators, tensors (names, types) and signatures as text, which
`analyze` parses.

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
import contextlib
import io
import re
import warnings

import numpy as np
import tensorflow as tf

VARIANTS = ("float32", "float16", "int8")
FILE_SUFFIXES = {"float32": ".tflite", "float16": ".f16.tflite", "int8": ".int8.tflite"}

_FLOAT_TYPES = ("FLOAT32", "FLOAT16")
_QUANTIZE_OPS = ("QUANTIZE", "DEQUANTIZE")
# Builtin operators print as their enum name (``FULLY_CONNECTED``); custom ones (Flex
# included) as their custom code (``FlexErfinv``), which `analyze` prefixes with ``CUSTOM:``.
_BUILTIN_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_SUBGRAPH = re.compile(r"Subgraph#(\d+) ")
_OPERATOR = re.compile(r"\s+Op#\d+ (.+?)\((.*)\) -> \[(.*)\]\Z")
_TENSOR = re.compile(r"\s+T#([\d_]+)\((.*)\) shape\S*:\[[^\]]*\], type:(\w+)")
_TENSOR_ID = re.compile(r"T#(-?[\d_]+)")
_SIGNATURE = re.compile(r"Signature#\d+ key: '(.*)'\Z")


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


def _tensor_ids(text):
    # ``T#4``, ``T#1_3`` (subgraph 1), ``T#5[-1, 1]`` (a small constant's values); -1: none
    return [t for t in _TENSOR_ID.findall(text) if t != "-1"]


def analyze(content):
    """The subgraphs and signatures of a TFLite flatbuffer, from
    ``tf.lite.experimental.Analyzer`` (public; it prints a description, parsed here).

    Args:
      content: the flatbuffer bytes.

    Returns:
      ``(subgraphs, signatures)``: one dict per subgraph, in order, with ``"operators"``
      (``(op name, input tensor ids, output tensor ids)`` in order; custom ops named
      ``CUSTOM:<code>``) and ``"tensors"`` (tensor id -> ``(name, type name)`` in order), and
      signature key -> subgraph index.
    """
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=bytes(content))
    subgraphs, signatures, current, key = [], {}, None, None
    for line in text.getvalue().splitlines():
        if (match := _OPERATOR.match(line)) and current is not None:
            name = match[1] if _BUILTIN_NAME.match(match[1]) else "CUSTOM:" + match[1]
            current["operators"].append((name, _tensor_ids(match[2]), _tensor_ids(match[3])))
        elif match := _TENSOR.match(line):
            subgraphs[-1]["tensors"][match[1]] = (match[2], match[3])
        elif line.startswith("Subgraph#") and (match := _SUBGRAPH.match(line)):
            current = {"operators": [], "tensors": {}}
            subgraphs.append(current)
        elif match := _SIGNATURE.match(line):
            key = match[1]
        elif line.startswith("- Subgraph: Subgraph#") and key is not None:
            signatures[key] = int(line.rsplit("#", 1)[1])
    return subgraphs, signatures


def op_summary(content):
    """Describes the operators of a TFLite flatbuffer, over all subgraphs (signatures).

    Args:
      content: the flatbuffer bytes.

    Returns:
      A dict with ``"ops"`` (op name -> count), ``"float_ops"`` (op name -> count of ops, other
      than QUANTIZE/DEQUANTIZE, that read or write a float tensor: for an int8 model, what
      stayed float) and ``"signatures"`` (signature key -> subgraph index).
    """
    subgraphs, signatures = analyze(content)
    ops, float_ops = collections.Counter(), collections.Counter()
    for subgraph in subgraphs:
        for name, inputs, outputs in subgraph["operators"]:
            ops[name] += 1
            if name not in _QUANTIZE_OPS and any(
                    subgraph["tensors"][i][1] in _FLOAT_TYPES for i in inputs + outputs):
                float_ops[name] += 1
    return {"ops": dict(sorted(ops.items())), "float_ops": dict(sorted(float_ops.items())),
            "signatures": signatures}


def tensor_names(content):
    """The names of all tensors of a TFLite flatbuffer, over all subgraphs, in order."""
    return [name for subgraph in analyze(content)[0]
            for name, _ in subgraph["tensors"].values()]


def operators(content):
    """Every operator of a TFLite flatbuffer, over all subgraphs, in order.

    Returns:
      A list of ``(op name, input tensor names, output tensor names)``.
    """
    found = []
    for subgraph in analyze(content)[0]:
        tensors = subgraph["tensors"]
        found += [(name, [tensors[i][0] for i in inputs], [tensors[i][0] for i in outputs])
                  for name, inputs, outputs in subgraph["operators"]]
    return found


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
