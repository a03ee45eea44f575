"""selu_zoo: self-normalizing networks (Klambauer et al. 2017) for Keras 3 and TensorFlow.

``import selu_zoo`` registers every layer, loss and task model with Keras, so models saved
with them load with ``keras.models.load_model`` afterwards (Keras does not import custom modules on its own).
"""

import keras as _keras

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"selu_zoo needs the TensorFlow Keras backend, got KERAS_BACKEND="
        f"{_keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow"
    )

from selu_zoo.constants import ALPHA, SCALE, SCALE_ALPHA  # noqa: E402
from selu_zoo import layers, losses, ops, tasks, theory  # noqa: E402

__version__ = "0.1.0"
__all__ = ["SCALE", "ALPHA", "SCALE_ALPHA", "layers", "losses", "ops", "tasks", "theory"]
