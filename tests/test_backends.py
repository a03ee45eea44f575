"""selu_zoo on JAX and PyTorch, from a TensorFlow test run: real child processes per backend.

* The backend-neutral test modules (`BACKEND_NEUTRAL`) run again under each other backend.
* The four zoo models, trained briefly here under TensorFlow and saved as ``.keras``, load
  under JAX and PyTorch after ``import selu_zoo``, predict what TensorFlow predicts, fine-tune
  one epoch with a finite loss, and the files they save there load back here.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from models import MODEL_NAMES, build_model
from test_models_every_backend import zoo_config, zoo_data, zoo_info

REPO = pathlib.Path(__file__).resolve().parents[1]
OTHER_BACKENDS = ("jax", "torch")
BACKEND_NEUTRAL = ("tests/test_masks.py", "tests/test_ops_every_backend.py",
                   "tests/test_models_every_backend.py")


def _env(backend):
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Saves the zoo under TensorFlow, then runs every child process of every backend at once."""
    folder = tmp_path_factory.mktemp("backends")
    for sub in ("tensorflow", "data"):
        (folder / sub).mkdir()
    expected = {}
    for name in MODEL_NAMES:
        keras.utils.set_random_seed(0)
        x, y = zoo_data(name)
        model = build_model(zoo_config(name), zoo_info(x, y))
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        model.save(folder / "tensorflow" / f"{name}.keras")
        np.savez(folder / "data" / f"{name}.npz", x=x, **({} if y is None else {"y": y}))
        expected[name] = keras.ops.convert_to_numpy(model(x, training=False))
    children = {}
    for backend in OTHER_BACKENDS:
        children[backend, "suite"] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--basetemp={folder / backend}-suite", *BACKEND_NEUTRAL],
            cwd=REPO, env=_env(backend), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        children[backend, "files"] = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "_backend_job.py"), str(folder)], cwd=REPO,
            env=_env(backend), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = {}
    try:
        for key, child in children.items():
            output, _ = child.communicate(timeout=600)
            results[key] = (child.returncode, output)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
    return folder, expected, results


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_backend_neutral_suite_passes(runs, backend):
    _, _, results = runs
    code, output = results[backend, "suite"]
    assert code == 0, output[-4000:]
    assert " passed" in output and " failed" not in output


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_files_load_predict_and_fine_tune(runs, backend):
    folder, expected, results = runs
    code, output = results[backend, "files"]
    assert code == 0, output[-4000:]
    losses = json.loads((folder / backend / "losses.json").read_text())
    assert sorted(losses) == sorted(MODEL_NAMES)
    for name in MODEL_NAMES:
        np.testing.assert_allclose(np.load(folder / backend / f"{name}.npy"), expected[name],
                                   rtol=1e-5, atol=1e-5, err_msg=f"{name} on {backend}")
        assert np.isfinite(losses[name]).all(), (name, losses[name])


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_files_saved_there_load_here(runs, backend):
    folder, _, results = runs
    assert results[backend, "files"][0] == 0, results[backend, "files"][1][-4000:]
    for name in MODEL_NAMES:
        model = keras.models.load_model(folder / backend / f"{name}.keras")
        x = np.load(folder / "data" / f"{name}.npz")["x"]
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)),
                                   np.load(folder / backend / f"{name}.tuned.npy"),
                                   rtol=1e-5, atol=1e-5, err_msg=f"{name} from {backend}")
