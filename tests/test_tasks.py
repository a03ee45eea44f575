"""selu_zoo.tasks: what each task owns, its endpoints and metrics, and .keras round trips."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from selu_zoo import tasks
from selu_zoo.layers import SELUDense

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def backbone(shape=(6,), width=8, name="backbone"):
    inputs = keras.Input(shape, name="features")
    h = keras.layers.Flatten()(inputs) if len(shape) > 1 else inputs
    return keras.Model(inputs, SELUDense(width, seed=1)(h), name=name)


def vae(likelihood="bernoulli", features=16, latent=3):
    inputs = keras.Input((features,), name="features")
    h = SELUDense(8)(inputs)
    encoder = keras.Model(inputs, [keras.layers.Dense(latent, name="z_mean")(h),
                                   keras.layers.Dense(latent, name="z_log_var")(h)],
                          name="encoder")
    z = keras.Input((latent,), name="z")
    decoder = keras.Model(z, keras.layers.Dense(features)(SELUDense(8)(z)), name="decoder")
    return tasks.VAE(encoder, decoder, likelihood=likelihood, seed=3, name="vae")


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    return {"classifier": tasks.Classifier(backbone(), 3, label_names=("a", "b", "c"),
                                           name="clf"),
            "regressor": tasks.Regressor(backbone(), target_mean=5.0, target_std=2.0,
                                         name="reg"),
            "vae": vae()}


def _x(n=10, d=6, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype("float32")


def test_the_class_says_what_the_model_is(models):
    assert [models[k].kind for k in models] == ["classifier", "regressor", "vae"]
    losses = {"classifier": keras.losses.SparseCategoricalCrossentropy,
              "regressor": keras.losses.MeanSquaredError,
              "vae": tasks.vae.losses.BernoulliReconstruction}
    for kind, model in models.items():
        model.compile(optimizer="adam")
        assert isinstance(model.loss, losses[kind]), kind
    explicit = tasks.Classifier(backbone(), 2)
    explicit.compile(optimizer="sgd", loss="mse", metrics=[])
    assert explicit.loss == "mse"


def test_training_pairs(models):
    x, y = _x(), np.arange(10)
    assert models["classifier"].training_pair(x, y)[1] is y
    assert models["vae"].training_pair(x, y)[1] is x


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        tasks.Classifier(backbone(), 1)
    with pytest.raises(ValueError, match="2 names for 3 classes"):
        tasks.Classifier(backbone(), 3, label_names=("a", "b"))
    with pytest.raises(ValueError, match="target_std"):
        tasks.Regressor(backbone(), target_std=0.0)
    with pytest.raises(ValueError, match="likelihood"):
        vae(likelihood="poisson")
    with pytest.raises(ValueError, match="one input"):
        tasks.Classifier(keras.Sequential([keras.layers.Dense(2)]), 2)


def test_classifier_endpoint_and_accuracy(models):
    model, x = models["classifier"], _x(50)
    (endpoint,) = model.serving_endpoints()
    out = endpoint({"features": x})
    np.testing.assert_allclose(out["logits"], np.asarray(model(x)), rtol=1e-6)
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, rtol=1e-6)
    labels = np.argmax(out["logits"], -1)
    labels[:10] = (labels[:10] + 1) % 3
    assert model.artifact_metrics(x, labels, model.run_endpoint) == {"accuracy": 0.8}


def test_regressor_predicts_in_target_units(models):
    model, x = models["regressor"], _x(40)
    prediction = model.run_endpoint("serving_default", {"features": x})["prediction"]
    standardized = np.asarray(model.standardized_prediction(model.backbone(x)))
    np.testing.assert_allclose(prediction, 2.0 * standardized + 5.0, rtol=1e-5)
    targets = prediction[:, 0] + 1.0
    metrics = model.artifact_metrics(x, targets, model.run_endpoint)
    assert metrics == pytest.approx({"mse": 1.0, "mae": 1.0}, rel=1e-5)


def test_vae_endpoints_mean_what_they_say(models):
    model, x = models["vae"], _x(12, 16)
    encoded = model.run_endpoint("encode", {"features": x})
    decoded = model.run_endpoint("decode", {"z": encoded["z_mean"]})
    np.testing.assert_allclose(model.run_endpoint("reconstruct", {"features": x})["x_mean"],
                               decoded["x_mean"], rtol=1e-6)
    np.testing.assert_allclose(decoded["x_mean"], 1 / (1 + np.exp(-decoded["x_logits"])),
                               rtol=1e-5)
    eps = np.random.default_rng(1).standard_normal((4, 3)).astype("float32")
    np.testing.assert_array_equal(model.run_endpoint("sample", {"eps": eps})["x_mean"],
                                  model.run_endpoint("decode", {"z": eps})["x_mean"])
    inputs = model.endpoint_inputs(x, seed=2)
    assert set(inputs) == {"reconstruct", "encode", "decode", "sample"}
    np.testing.assert_array_equal(inputs["decode"]["z"], encoded["z_mean"])


def test_elbo_is_one_definition_checked_against_float64_numpy(models):
    """The Monte Carlo ELBO against an independent float64 computation with the same draws."""
    model, x = models["vae"], (_x(12, 16) > 0.5).astype("float32")
    samples, seed = 5, 7
    z_mean, z_log_var = (np.asarray(t, np.float64) for t in model.encoder(x))
    z_log_var = np.clip(z_log_var, -20, 20)
    expected = []
    for i in range(len(x)):
        eps = np.random.default_rng([seed, i]).standard_normal((samples, 3))
        z = (z_mean[i] + np.exp(z_log_var[i] / 2) * eps).astype("float32")
        logits = np.asarray(model.decoder(z), np.float64)
        p = 1 / (1 + np.exp(-logits))
        nll = -np.sum(x[i] * np.log(p) + (1 - x[i]) * np.log1p(-p), axis=-1).mean()
        kl = 0.5 * np.sum(z_mean[i] ** 2 + np.exp(z_log_var[i]) - 1 - z_log_var[i])
        expected.append(-(nll + kl))
    elbo = model.elbo(x, num_samples=samples, seed=seed)
    np.testing.assert_allclose(elbo, expected, rtol=2e-5)
    # An example's estimate does not depend on the batch it is in.
    halves = np.concatenate([model.elbo(x[:5], num_samples=samples, seed=seed),
                             model.elbo(x[5:], num_samples=samples, seed=seed, first_index=5)])
    np.testing.assert_allclose(halves, elbo, rtol=1e-6)  # the same draws; float32 rounding
    metrics = model.artifact_metrics(x, None, model.run_endpoint, seed=0)
    assert metrics["elbo"] == pytest.approx(float(np.mean(model.elbo(x, seed=0))))


def test_generic_endpoints_serve_any_built_keras_model():
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    a, b = keras.Input((2,)), keras.Input((3,), name="second")
    joined = keras.layers.Concatenate()([a, b])
    two_outputs = keras.Model([a, b], [keras.layers.Dense(2, name="left")(joined),
                                       keras.layers.Dense(1, name="right")(joined)])
    dict_outputs = keras.Model(a, {"score": keras.layers.Dense(1)(a)})
    (endpoint,) = tasks.serving_endpoints(sequential)
    x = _x(5, 4)
    (value,) = endpoint({endpoint.input_names[0]: x}).values()
    np.testing.assert_allclose(value, np.asarray(sequential(x)), rtol=1e-6)
    (endpoint,) = tasks.serving_endpoints(two_outputs)
    assert endpoint.input_names[1] == "second" and len(set(endpoint.input_names)) == 2
    out = endpoint(dict(zip(endpoint.input_names, (_x(5, 2), _x(5, 3)))))
    assert set(out) == {"left", "right"}
    (endpoint,) = tasks.serving_endpoints(dict_outputs)
    assert set(endpoint({endpoint.input_names[0]: _x(5, 2)})) == {"score"}
    with pytest.raises(ValueError, match="no known inputs"):
        tasks.serving_endpoints(keras.Sequential([keras.layers.Dense(2)]))


def test_activation_probes(models):
    probe = models["classifier"].activation_probe()
    assert set(probe(_x(), training=False)) == {layer.name for layer in models["classifier"]
                                               .backbone.layers if tasks.is_self_normalizing(layer)}
    names = set(models["vae"].activation_probe()(_x(4, 16)))
    assert any(n.startswith("encoder/") for n in names)
    assert any(n.startswith("decoder/") for n in names)


def test_pictures(models):
    assert models["classifier"].pictures(_x()) == {}
    x = _x(8, 16)
    (image,) = models["vae"].pictures(x).values()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    assert image.shape[1] >= 256 and image.shape[0] >= 3 * 64
    np.testing.assert_array_equal(image, models["vae"].pictures(x).popitem()[1])


_ROUND_TRIP = """
import sys
import numpy as np, keras, selu_zoo
assert "models" not in sys.modules and "training" not in sys.modules
for name in sys.argv[1:]:
    model = keras.models.load_model(name + ".keras", safe_mode=True)
    x = np.load(name + "_x.npy")
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.load(name + "_y.npy"))
    extra = {"Classifier": lambda m: m.label_names, "Regressor": lambda m: m.target_std,
             "VAE": lambda m: m.likelihood}[type(model).__name__](model)
    print("LOADED", name, type(model).__name__, model.kind, type(model.loss).__name__, extra)
"""


def test_tasks_round_trip_through_keras_files_in_a_fresh_process(models, tmp_path):
    for name, model in models.items():
        model.compile(optimizer="adam")
        x = _x(6, 16 if name == "vae" else 6)
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_y.npy", np.asarray(model(x, training=False)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.run([sys.executable, "-c", _ROUND_TRIP, *models], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert ("LOADED classifier Classifier classifier SparseCategoricalCrossentropy "
            "('a', 'b', 'c')") in process.stdout
    assert "LOADED regressor Regressor regressor MeanSquaredError 2.0" in process.stdout
    assert "LOADED vae VAE vae BernoulliReconstruction bernoulli" in process.stdout
    assert "compile() was not called" not in process.stderr
