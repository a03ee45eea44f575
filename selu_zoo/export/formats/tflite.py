"""The three TFLite files (float32, float16, int8), builtin ops only (`selu_zoo.export.tflite`)."""

import tempfile

from selu_zoo import storage, tasks
from selu_zoo.export import evaluation, serving, tflite, verification
from selu_zoo.export.formats import base


def convert_variants(context, guard_int8=True):
    """Converts ``context.model`` (its `tflite.float32_twin`) to every TFLite variant, runs
    each on ``context.inputs`` and checks float32 against Keras.

    Args:
      context: the `base.ExportContext`.
      guard_int8: convert int8 from a SavedModel with `tflite.guard_endpoints`.

    Returns:
      ``(contents, report)``: variant -> flatbuffer bytes, and a report entry per variant
      (size, ops, metrics, differences to Keras and to float32, non-finite behaviour).

    Raises:
      tflite.TFLiteConversionError: if a variant needs non-builtin ops.
      verification.ExportVerificationError: if the float32 file does not match.
    """
    model, inputs, reference = context.model, context.inputs, context.reference
    twin = tflite.float32_twin(model)
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
                    serving.write_saved_model(twin, source,
                                              endpoints=tflite.guard_endpoints(endpoints),
                                              tflite_lowering=True)
                    float_content = tflite.convert(source, keys, "float32")
                float_nodes, float_op_types = tflite.int8_float_nodes(twin, float_content,
                                                                      guard_int8)
            content = tflite.convert(
                source, keys, variant,
                evaluation.representative_dataset(context.calibration)
                if variant == "int8" else None,
                float_nodes=float_nodes, float_op_types=float_op_types)
            run = verification.tflite_runner(content)
            outputs[variant] = verification.outputs_of(run, inputs)
            summary = tflite.op_summary(content)
            entry = {"size_bytes": len(content), "ops": summary["ops"],
                     "metrics": verification.artifact_metrics(model, context.validation, run,
                                                               context.seed),
                     "max_abs_diff_vs_keras": verification.max_abs_diffs(outputs[variant],
                                                                          reference),
                     "non_finite_inputs": verification.non_finite_behaviour(run, endpoints[0])}
            if variant == "float32":
                verification.check_parity("the float32 TFLite model", outputs[variant],
                                          float32_reference, context.tolerance)
            else:
                entry["max_abs_diff_vs_float32"] = verification.max_abs_diffs(
                    outputs[variant], outputs["float32"])
                metrics, baseline = entry["metrics"], report["float32"]["metrics"]
                entry["metrics_delta_vs_float32"] = {k: metrics[k] - baseline[k]
                                                     for k in metrics if k in baseline}
            if variant == "int8":
                entry["float_ops"] = summary["float_ops"]
                entry["kept_float"] = {"nodes": float_nodes, "op_types": float_op_types}
                entry["non_finite_guard"] = ({"bound": tflite.GUARD_BOUND,
                                              "scope": tflite.GUARD_SCOPE}
                                             if guard_int8 else None)
            contents[variant] = content
            report[variant] = entry
    return contents, report


class TFLite(base.Exporter):
    """float32 must match Keras; float16 and int8 are measured against float32
    (`convert_variants`); one report entry per variant, with its file name."""

    name = "tflite"  # TensorFlow converts; LiteRT, if installed, runs the checks
    report_key = "tflite"

    def file_names(self, model_name, signatures):
        return {f"tflite_{variant}": model_name + suffix
                for variant, suffix in tflite.FILE_SUFFIXES.items()}

    def write(self, context):
        contents, report = convert_variants(context)
        for variant, content in contents.items():
            name = context.names[f"tflite_{variant}"]
            storage.atomic_write(storage.join(context.extras, name), content)
            report[variant]["file"] = name
        return report

    def verify(self, context, written):
        return written  # convert_variants checked float32 parity as it measured each file
