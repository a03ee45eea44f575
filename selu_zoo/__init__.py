"""selu_zoo: self-normalizing networks (Klambauer et al. 2017) for Keras 3 and TensorFlow.

``import selu_zoo`` registers every layer, loss and task model with Keras, so models saved
with them load with ``keras.models.load_model`` afterwards (Keras does not import custom
modules on its own). The layers, losses and task models run on every Keras backend
(TensorFlow, JAX, PyTorch); training with ``train.py``, the datasets, tf.distribute and the
exports are TensorFlow.
"""

from selu_zoo import console

# ``python -m selu_zoo.export`` runs this before its __main__: TensorFlow's C++ start-up
# lines (the imports below) go to a file, not the console.
console.start_for_cli()

from selu_zoo.constants import ALPHA, SCALE, SCALE_ALPHA  # noqa: E402
from selu_zoo import layers, losses, ops, tasks, theory  # noqa: E402

__version__ = "0.1.0"
__all__ = ["SCALE", "ALPHA", "SCALE_ALPHA", "layers", "losses", "ops", "tasks", "theory"]
