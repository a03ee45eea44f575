"""The selu_zoo model zoo: one module per model family, and the registry that names them.

Each builder turns a config and a `selu_zoo.datasets.DatasetInfo` into a
`selu_zoo.tasks.Task` made of registered `selu_zoo` classes only, so a saved model loads with
``import selu_zoo`` and ``keras.models.load_model`` without importing this package.
"""

from models.registry import MODEL_NAMES, build_model, get_builder

__all__ = ["MODEL_NAMES", "build_model", "get_builder"]
