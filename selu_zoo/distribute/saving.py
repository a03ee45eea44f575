"""Saving a model once, from the chief of a (possibly) multi-worker run."""

import os

from absl import logging

from selu_zoo.distribute import cluster


def save_model(model, path, strategy):
    """Saves ``model`` as a ``.keras`` file on the chief; other workers skip it.

    The file is written to a temporary sibling and renamed into place, so a reader never sees
    a half-written file.

    Args:
      model: a Keras model (its variables may be mirrored).
      path: destination ending in ``.keras``.
      strategy: the ``tf.distribute.Strategy`` the model was trained under.

    Returns:
      ``path`` on the chief, None elsewhere.
    """
    if not cluster.is_chief(strategy):
        return None
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    model.save(tmp)
    os.replace(tmp, path)
    logging.info("saved %s", path)
    return path
