"""Loads the zoo's TensorFlow-saved ``.keras`` files under another Keras backend.

    KERAS_BACKEND=jax python tests/_backend_job.py DIR

For each ``DIR/tensorflow/<model>.keras`` (with ``DIR/data/<model>.npz`` holding ``x`` and
``y``): loads it after ``import selu_zoo``, writes its inference outputs to
``DIR/<backend>/<model>.npy``, fine-tunes it one epoch (the VAE with ``fit(x)``), saves it as
``DIR/<backend>/<model>.keras`` with its new outputs in ``<model>.tuned.npy``, and writes the
fine-tuning losses to ``DIR/<backend>/losses.json``.
"""

import json
import os
import sys

import keras
import numpy as np

import selu_zoo  # noqa: F401  (registers the classes the files name)


def main(folder):
    backend = keras.backend.backend()
    out = os.path.join(folder, backend)
    os.makedirs(out, exist_ok=True)
    losses = {}
    for name in sorted(f[:-len(".keras")] for f in os.listdir(os.path.join(folder, "tensorflow"))
                       if f.endswith(".keras")):
        data = np.load(os.path.join(folder, "data", f"{name}.npz"))
        x, y = data["x"], (data["y"] if "y" in data.files else None)
        model = keras.models.load_model(os.path.join(folder, "tensorflow", f"{name}.keras"))
        np.save(os.path.join(out, f"{name}.npy"),
                keras.ops.convert_to_numpy(model(x, training=False)))
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        losses[name] = history.history["loss"]
        model.save(os.path.join(out, f"{name}.keras"))
        np.save(os.path.join(out, f"{name}.tuned.npy"),
                keras.ops.convert_to_numpy(model(x, training=False)))
    with open(os.path.join(out, "losses.json"), "w") as f:
        json.dump(losses, f)


if __name__ == "__main__":
    main(sys.argv[1])
