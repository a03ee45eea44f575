"""Deployment artifacts that stock tools accept: TF Serving SavedModels, ``.keras``, TFLite.

One call for a training script::

    from selu_zoo.export import export_all
    result = export_all(model, "saved_models", "snn",
                        representative_data=(x_train, y_train), validation_data=(x_val, y_val))

publishes the next version of the model: one folder with the SavedModel for TensorFlow
Serving and, in its ``assets.extra/``, the ``.keras`` file with optimizer state, float32 /
float16 / int8 TFLite files (builtin ops only; SELU as the exact builtin ``ELU``), ONNX files
(with the ``onnx`` extra), a JSON
report of their parity and metrics and TF Serving warmup requests, all verified first and
published together; ``models.config`` gets this model's entry merged in.
``python -m selu_zoo.export`` re-exports a ``.keras`` file. The parts:

* `publish`: versions, staging, leases, pruning (`selu_zoo.export.publish`);
  `models_config`: merging ``models.config``; `warmup`: the warmup requests.
* `write_saved_model`: SavedModels (`selu_zoo.export.serving`).
* `check_serving_graph`: rejects graphs that reach XLA-compiled functions or non-core ops.
* `selu_zoo.export.tflite`, `selu_zoo.export.tflite_files`: conversion, op inspection, runs;
  `selu_zoo.export.onnx_files`: ONNX conversion and checks.
* `selu_zoo.export.formats`: one exporter per format (`formats.Exporter`) and the ordered
  registry `formats.EXPORTERS` that `export_all` runs.
"""

from selu_zoo.export.graph_check import check_serving_graph
from selu_zoo.export.graph_check import core_ops
from selu_zoo.export.graph_check import serving_graph_problems
from selu_zoo.export.graph_check import ServingGraphError
from selu_zoo.export.pipeline import artifact_names
from selu_zoo.export.pipeline import DEFAULT_FLOAT32_TOLERANCE
from selu_zoo.export.pipeline import export_all
from selu_zoo.export.pipeline import ExportResult
from selu_zoo.export.publish import DEFAULT_KEEP_VERSIONS
from selu_zoo.export.publish import latest_version
from selu_zoo.export.publish import version_dirs
from selu_zoo.export.publish import versions
from selu_zoo.export.serving import write_saved_model
from selu_zoo.export.tflite import TFLiteConversionError
from selu_zoo.export.tflite_files import float32_twin
from selu_zoo.export.verification import ExportVerificationError
from selu_zoo.export.verification import verify_keras_file

__all__ = [
    "DEFAULT_FLOAT32_TOLERANCE",
    "DEFAULT_KEEP_VERSIONS",
    "ExportResult",
    "ExportVerificationError",
    "ServingGraphError",
    "TFLiteConversionError",
    "artifact_names",
    "check_serving_graph",
    "core_ops",
    "export_all",
    "float32_twin",
    "latest_version",
    "serving_graph_problems",
    "verify_keras_file",
    "version_dirs",
    "versions",
    "write_saved_model",
]
