"""Task models: registered ``keras.Model`` subclasses that say what a model is and does.

`Classifier`, `Regressor` and `VAE` wrap functional sub-models (a backbone; an encoder and a
decoder) built by the zoo in ``models/``. Saved as ``.keras``, the class travels with the
file, so a loaded model still knows its loss, its endpoints and its metrics.
`serving_endpoints` gives the endpoints of any Keras model (a generic ``serving_default``
for models that are not tasks).
"""

import importlib

from selu_zoo.tasks.base import SERVING_DEFAULT
from selu_zoo.tasks.base import Task
from selu_zoo.tasks.base import is_self_normalizing
from selu_zoo.tasks.base import layer_probe
from selu_zoo.tasks.classifier import Classifier
from selu_zoo.tasks.regressor import Regressor
from selu_zoo.tasks.vae import VAE

_SERVING = ("Endpoint", "generic_endpoints", "serving_endpoints")


def __getattr__(name):
    """The serving names and module (TensorFlow), imported when first used: only exports need
    them."""
    if name in _SERVING or name == "endpoints":
        endpoints = importlib.import_module("selu_zoo.tasks.endpoints")
        return endpoints if name == "endpoints" else getattr(endpoints, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Classifier", "Endpoint", "Regressor", "SERVING_DEFAULT", "Task", "VAE",
           "generic_endpoints", "is_self_normalizing", "layer_probe", "serving_endpoints"]
