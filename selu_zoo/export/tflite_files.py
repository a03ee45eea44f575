"""The three TFLite files of an export (float32, float16, int8), converted and verified.

The SavedModel converted is traced inside `selu_zoo.ops.tflite_lowering()`, so SELU lowers
to the exact builtin ``ELU``. A model built under a mixed-precision policy is converted
through its float32 twin (`float32_twin`): TFLite has no bfloat16 kernels. For int8 the
input standardization stays float32 (`standardization_nodes`).
"""

import re
import tempfile

import keras
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
    scope = re.compile("(" + "|".join(map(re.escape, sorted(names))) + r")(_\d+)?\Z")
    nodes = sorted({name for name in tflite.tensor_names(content)
                    if any(scope.match(part) for fused in name.split(";")
                           for part in fused.split("/"))})
    return nodes, True


def convert_variants(model, *, inputs, validation, representative_inputs, reference,
                     float32_tolerance, seed=0):
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
            float_nodes, float_op_types = [], []
            if variant == "int8":
                float_nodes, has_normalization = standardization_nodes(twin, contents["float32"])
                if has_normalization and not float_nodes:
                    logging.warning("int8: Normalization layer ops not found by name; leaving "
                                    "every SUB and MUL in float32 instead")
                    float_op_types = ["SUB", "MUL"]
            content = tflite.convert(
                lowered, keys, variant,
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
            contents[variant] = content
            report[variant] = entry
    return contents, report
