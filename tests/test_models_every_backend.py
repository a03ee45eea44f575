"""Every public layer, task model and zoo builder on whichever Keras backend runs the suite.

Backend-neutral (no TensorFlow import): tests/test_backends.py runs this module under JAX and
PyTorch too. Each case builds, calls, fits, evaluates, predicts and round-trips a ``.keras``
file on the backend at hand.
"""

import importlib
import types

import keras
import numpy as np
import pytest

import selu_zoo  # noqa: F401  (registers the classes for loading)
from models import MODEL_NAMES, build_model
from selu_zoo import layers

N = 64


def zoo_config(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    config.jit_compile = False
    return config


def zoo_data(name, seed=0):
    """Features shaped as ``name``'s default dataset, and labels (None for the VAE)."""
    rng = np.random.default_rng(seed)
    x = rng.random((N, 64)).astype("float32")
    shape = zoo_config(name).feature_shape or (64,)
    if name == "snn":
        x = rng.standard_normal((N, 30)).astype("float32")
        shape = (30,)
    y = None if name == "snn_vae" else rng.integers(0, 3, N).astype("int64")
    if name == "snn_vae":
        x = (x > 0.6).astype("float32")
    return x.reshape((N, *shape)), y


def zoo_info(x, y):
    return types.SimpleNamespace(
        feature_shape=tuple(x.shape[1:]), task="classification", num_classes=3,
        label_names=None, mean=x.mean(0), variance=x.var(0) + 1e-3, label_mean=0.0,
        label_variance=1.0)


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_zoo_model_fits_evaluates_predicts_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    x, y = zoo_data(name)
    model = build_model(zoo_config(name), zoo_info(x, y))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # the VAE: fit(x)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
    before = _predict(model, x)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-5, atol=1e-5)
    model.save(tmp_path / f"{name}.keras")
    loaded = keras.models.load_model(tmp_path / f"{name}.keras")
    assert type(loaded) is type(model)
    np.testing.assert_allclose(_predict(loaded, x), before, rtol=1e-5, atol=1e-6)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)  # it fine-tunes after loading


LAYERS = {
    "SELU": lambda: layers.SELU(),
    "SELUDense": lambda: layers.SELUDense(16, dropout_rate=0.1, seed=1),
    "AlphaDropout": lambda: layers.AlphaDropout(0.1, seed=2),
    "FeatureAlphaDropout": lambda: layers.FeatureAlphaDropout(0.1, seed=3),
    "MirrorPadding2D": lambda: layers.MirrorPadding2D(1, mode="symmetric"),
    "SELURNNCell": lambda: keras.layers.RNN(layers.SELURNNCell(8)),
    "Clip": lambda: layers.Clip(-2.0, 2.0),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_trains_and_round_trips_in_a_model(name, tmp_path):
    keras.utils.set_random_seed(0)
    shape = {"MirrorPadding2D": (4, 4, 2), "SELURNNCell": (5, 3),
             "FeatureAlphaDropout": (5, 3)}.get(name, (6,))
    x = np.random.default_rng(0).standard_normal((N, *shape)).astype("float32")
    inputs = keras.Input(shape)
    hidden = keras.layers.Flatten()(LAYERS[name]()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, np.zeros((N, 1), "float32"), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_predict(loaded, x), _predict(model, x), rtol=1e-6, atol=1e-6)


def test_vae_sampling_draws_and_adds_its_kl_term():
    sampling = layers.VAESampling(seed=4)
    mean, log_var = np.zeros((8, 2), "float32"), np.zeros((8, 2), "float32")
    z = keras.ops.convert_to_numpy(sampling([mean, log_var], training=True))
    assert z.shape == (8, 2) and np.std(z) > 0
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(sampling([mean, log_var], training=False)), mean)
