"""The three TFLite files of an export (float32, float16, int8), converted and verified.

The SavedModel converted is traced inside `selu_zoo.ops.tflite_lowering()`, so SELU lowers
to the exact builtin ``ELU``. A model built under a mixed-precision policy is converted
through its float32 twin (`float32_twin`): TFLite has no bfloat16 kernels. For int8 the
input standardization stays float32 (`standardization_nodes`), and a guard
(`guard_endpoints`) makes examples with NaN, infinite or huge (> `GUARD_BOUND`) inputs come
out NaN: quantized, such values become finite integers and confident answers.
"""

import re
import tempfile

import keras
import tensorflow as tf
from absl import logging

from selu_zoo import storage, tasks
from selu_zoo.export import evaluation, serving, tflite, verification


def _all_layers(parent):
    for layer in getattr(parent, "layers", ()):
        yield layer
        yield from _all_layers(layer)


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

    TFLite has no bfloat16 kernels and converts float16 math only as weights, so a model
    built under a mixed-precision policy (``mixed_bfloat16``, ``mixed_float16``; its
    variables are float32 already) is converted through a twin whose layers compute in
    float32. The twin has its own variables, holding the same values.
    """
    if all(layer.compute_dtype == "float32" for layer in _all_layers(model)):
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)
    twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    return twin


# Name scope of the int8 file's non-finite input guard (`guard_endpoints`).
GUARD_SCOPE = "non_finite_guard"
# Inputs beyond this magnitude are refused by the int8 guard, as NaN and infinities are.
GUARD_BOUND = 1e30


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

    The int8 TFLite file needs this: its QUANTIZE ops map NaN and out-of-range values to
    finite integers, so without a guard it answers NaN inputs with confident predictions.
    Per example, the guard checks ``|x| <= bound`` for every value of every floating-point
    input (false for NaN and infinities: TFLite has no ``IS_FINITE``) and multiplies every
    floating-point output by 1 (valid) or NaN. It is builtin ops only (``ABS``,
    ``LESS_EQUAL``, ``REDUCE_ALL``, ``LOGICAL_AND``, ``SELECT_V2``, ``RESHAPE``, ``MUL``, in
    the name scope `GUARD_SCOPE`), which `int8_float_nodes` keeps in float32, so valid
    examples get exactly the unguarded model's outputs.

    Args:
      endpoints: `selu_zoo.tasks.Endpoint`s.
      bound: the largest accepted ``|x|`` of any input value.

    Returns:
      A tuple of `selu_zoo.tasks.Endpoint` with the same names and input signatures.
    """
    return tuple(tasks.Endpoint(e.name, _guarded(e.fn, bound), e.input_signature)
                 for e in endpoints)


def _scoped_nodes(content, names):
    """Tensor names of ``content`` with a name-scope part matching one of ``names``."""
    scope = re.compile("(" + "|".join(map(re.escape, sorted(names))) + r")(_\d+)?\Z")
    return sorted({name for name in tflite.tensor_names(content)
                   if any(scope.match(part) for fused in name.split(";")
                          for part in fused.split("/"))})


def guard_nodes(content):
    """Tensor names, in a float TFLite model, of the `guard_endpoints` guard's ops.

    Those are the ops in the `GUARD_SCOPE` name scope and the ops that read them: the
    ``MUL`` ops that write the signature's outputs, which are named after the signature
    (``StatefulPartitionedCall:0``, ...), not after the scope.

    Returns:
      The tensor names, sorted (empty if the model has no guard).
    """
    scoped = set(_scoped_nodes(content, [GUARD_SCOPE]))
    selects = {name for _, inputs, outputs in tflite.operators(content)
               if scoped.intersection(inputs) for name in outputs}
    return sorted(scoped | selects)


def standardization_nodes(model, content):
    """Tensor names, in a float TFLite model of ``model``, of its ``Normalization`` layers.

    The zoo's models standardize raw features inside the model. Quantized to int8 that goes
    wrong twice: the input QUANTIZE has one scale for all raw features, and so has the MUL by
    ``1 / std``; those ops stay float32. The names are matched by the layers' name scopes.

    Returns:
      ``(nodes, has_normalization)``: the tensor names (sorted), and whether the model has a
      Normalization layer at all.
    """
    names = {layer.name for layer in _all_layers(model)
             if isinstance(layer, keras.layers.Normalization)}
    if not names:
        return [], False
    return _scoped_nodes(content, names), True


def int8_float_nodes(model, float_content, guarded=False):
    """What an int8 conversion keeps in float32: ``(nodes, op_types)`` for `tflite.convert`.

    Args:
      model: the (float32) Keras model converted.
      float_content: a float32 TFLite file of the very SavedModel that int8 converts (tensor
        names differ between traces).
      guarded: whether that SavedModel has the `guard_endpoints` guard, whose ops must stay
        float32 (quantized, NaN would become a finite integer).
    """
    nodes, has_normalization = standardization_nodes(model, float_content)
    op_types = []
    if has_normalization and not nodes:
        logging.warning("int8: Normalization layer ops not found by name; leaving every SUB "
                        "and MUL in float32 instead")
        op_types = ["SUB", "MUL"]
    if guarded:
        guard = guard_nodes(float_content)
        if not guard:
            raise tflite.TFLiteConversionError(
                "int8: the non-finite input guard's ops were not found by name")
        nodes = sorted(set(nodes) | set(guard))
    return nodes, op_types


def convert_variants(model, *, inputs, validation, representative_inputs, reference,
                     float32_tolerance, seed=0, guard_int8=True):
    """Converts ``model`` to every TFLite variant, runs each, and checks or measures it.

    Args:
      model: the Keras model.
      inputs: ``{endpoint: {input: array}}`` of the verification examples.
      validation: the verification `ExportData` (labels for the task's metrics).
      representative_inputs: ``{endpoint: {input: array}}`` for int8 calibration.
      reference: the Keras outputs on ``inputs``.
      float32_tolerance: the float32 file must match Keras within this (relative to
        ``max(1, |output|)``).
      seed: seed of the task's metrics' random draws.
      guard_int8: give the int8 file the non-finite input guard (`guard_endpoints`), so
        that it answers examples with NaN, infinite or huge inputs with NaN instead of a
        confident prediction (converted from a second, guarded SavedModel).

    Returns:
      ``(contents, report)``: variant -> flatbuffer bytes, and a report entry per variant
      (size, ops, the task's metrics, differences to Keras and to float32, and what it
      does with non-finite inputs).

    Raises:
      tflite.TFLiteConversionError: if a variant needs non-builtin ops.
      verification.ExportVerificationError: if the float32 file does not match.
    """
    twin = float32_twin(model)
    endpoints = tasks.serving_endpoints(twin)
    keys = [e.name for e in endpoints]
    float32_reference = reference if twin is model else verification.outputs_of(
        verification.keras_runner(endpoints), inputs)
    contents, report, outputs = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="selu_zoo-tflite-") as scratch:
        lowered = storage.join(scratch, "saved_model")
        serving.write_saved_model(twin, lowered, endpoints=endpoints, tflite_lowering=True)
        for variant in tflite.VARIANTS:
            source, float_nodes, float_op_types = lowered, [], []
            if variant == "int8":
                float_content = contents["float32"]
                if guard_int8:
                    source = storage.join(scratch, "guarded_saved_model")
                    serving.write_saved_model(twin, source, endpoints=guard_endpoints(endpoints),
                                              tflite_lowering=True)
                    float_content = tflite.convert(source, keys, "float32")
                float_nodes, float_op_types = int8_float_nodes(twin, float_content, guard_int8)
            content = tflite.convert(
                source, keys, variant,
                evaluation.representative_dataset(representative_inputs)
                if variant == "int8" else None,
                float_nodes=float_nodes, float_op_types=float_op_types)
            run = verification.tflite_runner(content)
            outputs[variant] = verification.outputs_of(run, inputs)
            summary = tflite.op_summary(content)
            entry = {"size_bytes": len(content), "ops": summary["ops"],
                     "metrics": verification.artifact_metrics(model, validation, run, seed),
                     "max_abs_diff_vs_keras": evaluation.max_abs_diffs(outputs[variant],
                                                                        reference),
                     "non_finite_inputs": verification.non_finite_behaviour(run, endpoints[0])}
            if variant == "float32":
                verification.check_parity("the float32 TFLite model", outputs[variant],
                                          float32_reference, float32_tolerance)
            else:
                entry["max_abs_diff_vs_float32"] = evaluation.max_abs_diffs(
                    outputs[variant], outputs["float32"])
                entry["metrics_delta_vs_float32"] = evaluation.delta(
                    entry["metrics"], report["float32"]["metrics"])
            if variant == "int8":
                entry["float_ops"] = summary["float_ops"]
                entry["kept_float"] = {"nodes": float_nodes, "op_types": float_op_types}
                entry["non_finite_guard"] = ({"bound": GUARD_BOUND, "scope": GUARD_SCOPE}
                                             if guard_int8 else None)
            contents[variant] = content
            report[variant] = entry
    return contents, report
