"""Export formats: one module per format behind one interface (`base.Exporter`).

`EXPORTERS` is the registry: `selu_zoo.export.export_all` runs them in this order, and the
optional formats (``--export_formats``), their dependencies and the artifact file names all
derive from it. A new format is a new module with an `Exporter` subclass, added here.
"""

from selu_zoo.export.formats.base import ExportContext
from selu_zoo.export.formats.base import Exporter
from selu_zoo.export.formats.keras_file import KerasFile
from selu_zoo.export.formats.onnx import Onnx
from selu_zoo.export.formats.saved_model import SavedModel
from selu_zoo.export.formats.tflite import TFLite
from selu_zoo.export.formats.warmup import WarmupRequests

# The SavedModel first (the others use its runner), the warmup requests after it.
EXPORTERS = (SavedModel(), KerasFile(), TFLite(), Onnx(), WarmupRequests())

__all__ = ["EXPORTERS", "ExportContext", "Exporter", "KerasFile", "Onnx", "SavedModel",
           "TFLite", "WarmupRequests"]
