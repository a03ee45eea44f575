"""Task models: registered ``keras.Model`` subclasses that say what a model is and does.

`Classifier`, `Regressor` and `VAE` wrap functional sub-models (a backbone; an encoder and a
decoder) built by the zoo in ``models/``. Saved as ``.keras``, the class travels with the
file, so a loaded model still knows its loss, its endpoints and its metrics.
`serving_endpoints` gives the endpoints of any Keras model (a generic ``serving_default``
for models that are not tasks).
"""

from selu_zoo.tasks.base import Task
from selu_zoo.tasks.base import is_self_normalizing
from selu_zoo.tasks.base import layer_probe
from selu_zoo.tasks.classifier import Classifier
from selu_zoo.tasks.endpoints import Endpoint
from selu_zoo.tasks.endpoints import generic_endpoints
from selu_zoo.tasks.endpoints import SERVING_DEFAULT
from selu_zoo.tasks.endpoints import serving_endpoints
from selu_zoo.tasks.regressor import Regressor
from selu_zoo.tasks.vae import VAE

__all__ = ["Classifier", "Endpoint", "Regressor", "SERVING_DEFAULT", "Task", "VAE",
           "generic_endpoints", "is_self_normalizing", "layer_probe", "serving_endpoints"]
