"""TFLite tools: builtin-only conversion from a SavedModel, flatbuffer inspection, runs, the
float32 twin of a mixed-precision model and the int8 file's non-finite input guard.

Convert a SavedModel traced inside `selu_zoo.ops.tflite_lowering()`: SELU then lowers to the
exact builtin ``ELU``. Only ``TFLITE_BUILTINS`` are allowed (no Flex in the standalone
runtime). The flatbuffer is read with the public ``tf.lite.experimental.Analyzer``.
"""

import collections
import contextlib
import io
import re
import warnings

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from selu_zoo import tasks
from selu_zoo.export import evaluation

VARIANTS = ("float32", "float16", "int8")
FILE_SUFFIXES = {"float32": ".tflite", "float16": ".f16.tflite", "int8": ".int8.tflite"}
# Name scope of the int8 file's non-finite input guard (`guard_endpoints`).
GUARD_SCOPE = "non_finite_guard"
# Inputs beyond this magnitude are refused by the int8 guard, as NaN and infinities are.
GUARD_BOUND = 1e30

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
      saved_model_dir: the SavedModel.
      signature_keys: signatures to convert; each becomes a TFLite signature of the same name.
      variant: one of `VARIANTS`: float32; float16 weights; int8 weights and activations
        where the converter has int8 kernels, float32 inputs and outputs.
      representative_dataset: for ``"int8"``, a callable returning an iterator of
        ``(signature_key, {input_name: array})`` calibration samples.
      float_nodes: for ``"int8"``, output tensor names (as in the float model) of ops to
        leave in float32 (see `int8_float_nodes`).
      float_op_types: for ``"int8"``, builtin op names to leave in float32 everywhere.

    Returns:
      The flatbuffer as bytes.

    Raises:
      ValueError: for an unknown variant, or int8 without a representative dataset.
      TFLiteConversionError: if the graph needs non-builtin ops or the converter fails.
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
    problems = [op for op in op_summary(content)["ops"] if op.startswith(("CUSTOM:", "Flex"))]
    if problems:
        raise TFLiteConversionError(f"the {variant} model contains non-builtin ops {problems}; "
                                    f"the standalone TFLite runtime cannot run them")
    return content


def _tensor_ids(text):
    # ``T#4``, ``T#1_3`` (subgraph 1), ``T#5[-1, 1]`` (a small constant's values); -1: none
    return [t for t in _TENSOR_ID.findall(text) if t != "-1"]


def analyze(content):
    """The subgraphs and signatures of a TFLite flatbuffer.

    Returns:
      ``(subgraphs, signatures)``: per subgraph, in order, a dict with ``"operators"``
      (``(op name, input tensor ids, output tensor ids)``; custom ops named
      ``CUSTOM:<code>``) and ``"tensors"`` (tensor id -> ``(name, type name)``); and
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
    """The operators of a TFLite flatbuffer, over all subgraphs.

    Returns:
      ``{"ops": {name: count}, "float_ops": {name: count of ops other than
      QUANTIZE/DEQUANTIZE that read or write a float tensor}, "signatures": {key: subgraph}}``.
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


def operators(content):
    """Every operator, over all subgraphs: ``(op name, input names, output names)``."""
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

    TFLite checks dtypes but not ranks (FULLY_CONNECTED would run a rank-1 array as one
    example); dimensions of -1 match any size.
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
      ValueError: as `check_inputs`.
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


def _float32_policies(config):
    """A serialized model with every mixed-precision dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and str(
                config.get("config", {}).get("name", "")).startswith("mixed_"):
            return "float32"
        return {k: _float32_policies(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_policies(v) for v in config]
    return config


def float32_twin(model):
    """``model`` if every layer computes in float32, else a float32 copy with its weights.

    TFLite and ONNX Runtime have no mixed bfloat16 kernels, so a mixed-precision model is
    converted through this twin (own variables, same values).
    """
    if all(layer.compute_dtype == "float32" for layer in evaluation.all_layers(model)):
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)
    twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    return twin


def _guarded(fn, bound):
    def guarded(*args):
        outputs = fn(*args)
        with tf.name_scope(GUARD_SCOPE):
            valid = None
            for arg in map(tf.convert_to_tensor, args):
                if not arg.dtype.is_floating:
                    continue
                # False for NaN and for infinities, as well as for |x| > bound.
                inside = tf.less_equal(tf.abs(arg), tf.constant(bound, arg.dtype))
                if arg.shape.rank > 1:
                    inside = tf.reduce_all(inside, axis=list(range(1, arg.shape.rank)))
                valid = inside if valid is None else tf.logical_and(valid, inside)
            if valid is None:
                return outputs
            # 1 for valid examples, NaN for the others. Multiplying the outputs by it (not
            # selecting a NaN constant for them) keeps the NaN out of the quantizer's reach:
            # a constant beside a quantized tensor (softmax's output) is quantized too.
            factor = tf.where(valid, tf.constant(1.0), tf.constant(float("nan")))
            result = {}
            for name, value in outputs.items():
                if value.dtype.is_floating:
                    value = value * tf.reshape(tf.cast(factor, value.dtype),
                                               [-1] + [1] * (value.shape.rank - 1))
                result[name] = value
            return result

    return guarded


def guard_endpoints(endpoints, bound=GUARD_BOUND):
    """Endpoints whose outputs are NaN for every example with a NaN, infinite or huge input.

    The int8 file needs it: QUANTIZE maps NaN to a finite integer. Per example, every value
    of every floating-point input must satisfy ``|x| <= bound``; builtin ops only, in the
    name scope `GUARD_SCOPE`, kept float32 by `int8_float_nodes`, so valid examples get
    exactly the unguarded outputs.

    Returns:
      `selu_zoo.tasks.Endpoint`\\ s with the same names and input signatures.
    """
    return tuple(tasks.Endpoint(e.name, _guarded(e.fn, bound), e.input_signature)
                 for e in endpoints)


def _scoped_nodes(content, names):
    """Tensor names of ``content`` with a name-scope part matching one of ``names``."""
    scope = re.compile("(" + "|".join(map(re.escape, sorted(names))) + r")(_\d+)?\Z")
    return sorted({name for subgraph in analyze(content)[0]
                   for name, _ in subgraph["tensors"].values()
                   if any(scope.match(part) for fused in name.split(";")
                          for part in fused.split("/"))})


def _guard_nodes(content):
    """The guard's tensor names: its scope's, and the MUL outputs named after the signature."""
    scoped = set(_scoped_nodes(content, [GUARD_SCOPE]))
    selects = {name for _, inputs, outputs in operators(content)
               if scoped.intersection(inputs) for name in outputs}
    return sorted(scoped | selects)


def int8_float_nodes(model, float_content, guarded=False):
    """What an int8 conversion keeps in float32: ``(nodes, op_types)`` for `convert`.

    The ``Normalization`` layers' ops stay float32 (one int8 scale for all raw features goes
    wrong), and so do the `guard_endpoints` guard's ops.

    Args:
      model: the (float32) Keras model converted.
      float_content: a float32 TFLite file of the very SavedModel that int8 converts (tensor
        names differ between traces).
      guarded: whether that SavedModel has the guard.

    Raises:
      TFLiteConversionError: if ``guarded`` and the guard's ops are not found.
    """
    names = {layer.name for layer in evaluation.all_layers(model)
             if isinstance(layer, keras.layers.Normalization)}
    nodes = _scoped_nodes(float_content, names) if names else []
    op_types = []
    if names and not nodes:
        logging.warning("int8: Normalization layer ops not found by name; leaving every SUB "
                        "and MUL in float32 instead")
        op_types = ["SUB", "MUL"]
    if guarded:
        guard = _guard_nodes(float_content)
        if not guard:
            raise TFLiteConversionError(
                "int8: the non-finite input guard's ops were not found by name")
        nodes = sorted(set(nodes) | set(guard))
    return nodes, op_types
