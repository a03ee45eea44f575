"""Deployment artifacts that stock tools accept: TF Serving SavedModels, ``.keras``, TFLite.

One call for a training script::

    from selu_zoo.export import export_all
    paths = export_all(model, "saved_models", "snn",
                       representative_data=x_train, validation_data=(x_val, y_val))

writes the next SavedModel version for TensorFlow Serving (with ``models.config``), the
``.keras`` file with optimizer state, float32 / float16 / int8 TFLite models (builtin ops
only; SELU as the exact builtin ``ELU``) and a JSON report of their parity and accuracy,
all verified first and published together. ``python -m selu_zoo.export`` re-exports a
``.keras`` file. The parts:

* `write_saved_model`, `export_saved_model`, `write_models_config`: SavedModels
  (`selu_zoo.export.serving`).
* `check_serving_graph`: rejects graphs that reach XLA-compiled functions or non-core ops
  (`selu_zoo.export.graph_check`).
* `selu_zoo.export.tflite`: conversion, op inspection, interpreter runs.
* `describe`: what a model exports, by the zoo's model contract
  (`selu_zoo.export.signatures`).
"""

from selu_zoo.export.graph_check import check_serving_graph
from selu_zoo.export.graph_check import core_ops
from selu_zoo.export.graph_check import serving_graph_problems
from selu_zoo.export.graph_check import ServingGraphError
from selu_zoo.export.pipeline import artifact_names
from selu_zoo.export.pipeline import DEFAULT_FLOAT32_TOLERANCE
from selu_zoo.export.pipeline import DEFAULT_KEEP_VERSIONS
from selu_zoo.export.pipeline import export_all
from selu_zoo.export.pipeline import export_keras
from selu_zoo.export.pipeline import float32_twin
from selu_zoo.export.pipeline import ExportVerificationError
from selu_zoo.export.pipeline import verify_keras_file
from selu_zoo.export.serving import export_saved_model
from selu_zoo.export.serving import list_versions
from selu_zoo.export.serving import MODELS_CONFIG
from selu_zoo.export.serving import models_config_text
from selu_zoo.export.serving import prune_versions
from selu_zoo.export.serving import write_models_config
from selu_zoo.export.serving import write_saved_model
from selu_zoo.export.signatures import describe
from selu_zoo.export.signatures import ModelSignatures
from selu_zoo.export.tflite import TFLiteConversionError

__all__ = [
    "DEFAULT_FLOAT32_TOLERANCE",
    "DEFAULT_KEEP_VERSIONS",
    "ExportVerificationError",
    "MODELS_CONFIG",
    "ModelSignatures",
    "ServingGraphError",
    "TFLiteConversionError",
    "artifact_names",
    "check_serving_graph",
    "core_ops",
    "describe",
    "export_all",
    "export_keras",
    "export_saved_model",
    "float32_twin",
    "list_versions",
    "models_config_text",
    "prune_versions",
    "serving_graph_problems",
    "verify_keras_file",
    "write_models_config",
    "write_saved_model",
]
