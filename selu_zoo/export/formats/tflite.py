"""The three TFLite files (float32, float16, int8), builtin ops only
(`selu_zoo.export.tflite_files` converts and measures them)."""

from selu_zoo import storage
from selu_zoo.export import tflite, tflite_files
from selu_zoo.export.formats import base


class TFLite(base.Exporter):
    """float32 must match Keras; float16 and int8 are measured against float32.

    Its report entry has one entry per variant (`tflite_files.convert_variants`), with the
    file name.
    """

    name = "tflite"  # TensorFlow converts; LiteRT, if installed, runs the checks
    report_key = "tflite"

    def file_names(self, model_name, signatures):
        return {f"tflite_{variant}": model_name + suffix
                for variant, suffix in tflite.FILE_SUFFIXES.items()}

    def write(self, context):
        contents, report = tflite_files.convert_variants(
            context.model, inputs=context.inputs, validation=context.validation,
            representative_inputs=context.calibration, reference=context.reference,
            float32_tolerance=context.tolerance, seed=context.seed)
        for variant, content in contents.items():
            name = context.names[f"tflite_{variant}"]
            storage.atomic_write(storage.join(context.extras, name), content)
            report[variant]["file"] = name
        return report

    def verify(self, context, written):
        # convert_variants checked each file (float32 parity) as it measured it.
        return written
