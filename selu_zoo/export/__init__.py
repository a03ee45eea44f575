"""Deployment artifacts that stock tools accept, published one complete version at a time.

``export_all(model, export_dir, model_name, representative_data=..., validation_data=...)``
publishes the next version: the SavedModel for TF Serving and, in its ``assets.extra/``, the
``.keras`` file, float32 / float16 / int8 TFLite files, ONNX files (``onnx`` extra), a
``report.json`` and warmup requests, all verified first; ``models.config`` gets the model's
entry merged in. Formats are plug-ins (`selu_zoo.export.formats`); versions, staging and
pruning are `selu_zoo.export.publish`. ``python -m selu_zoo.export`` re-exports a ``.keras``.
"""

from selu_zoo.export.formats.keras_file import verify_keras_file
from selu_zoo.export.pipeline import artifact_names
from selu_zoo.export.pipeline import DEFAULT_FLOAT32_TOLERANCE
from selu_zoo.export.pipeline import export_all
from selu_zoo.export.pipeline import ExportResult
from selu_zoo.export.publish import DEFAULT_KEEP_VERSIONS
from selu_zoo.export.publish import latest_version
from selu_zoo.export.publish import version_dirs
from selu_zoo.export.publish import versions
from selu_zoo.export.serving import check_serving_graph
from selu_zoo.export.serving import core_ops
from selu_zoo.export.serving import serving_graph_problems
from selu_zoo.export.serving import ServingGraphError
from selu_zoo.export.serving import write_saved_model
from selu_zoo.export.tflite import TFLiteConversionError
from selu_zoo.export.tflite import float32_twin
from selu_zoo.export.verification import ExportVerificationError

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
