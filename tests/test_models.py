"""models/ and configs/: registry, builders, training, self-normalization, VAE, RNN."""

import importlib
import math

import keras
import numpy as np
import pytest

import selu_zoo
from models import MODEL_NAMES, build_model, get_builder
from selu_zoo import tasks
from selu_zoo.datasets import DatasetInfo

DIGITS_NAMES = ("snn_vae", "snn_rnn", "snn_cnn")


def config_of(name, **overrides):
    config = importlib.import_module(f"configs.{name}").get_config()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def info_for(x, num_classes, y=None):
    """A DatasetInfo describing arrays ``x`` (and regression targets ``y``)."""
    regression = not num_classes
    return DatasetInfo(
        name="synthetic", task="regression" if regression else "classification",
        num_classes=num_classes or None, label_names=None, feature_names=None,
        feature_shape=tuple(x.shape[1:]), num_examples={"train": len(x)}, mean=x.mean(0),
        variance=x.var(0), label_mean=float(np.mean(y)) if regression and y is not None else 0.0,
        label_variance=float(np.var(y)) if regression and y is not None else 1.0)


def standard_info(shape, num_classes=10):
    """Info whose standardization is the identity (mean 0, variance 1)."""
    return DatasetInfo("standard", "classification", num_classes, None, None, shape,
                       {"train": 1}, np.zeros(shape), np.ones(shape))


def synthetic(name, n=256, seed=0):
    """Raw features and labels shaped like the default config's dataset (after reshaping).

    snn: 30 features on wildly different scales, 2 linearly separable classes (breast_cancer
    stand-in). The others: 64 pixels in [0, 1] (digits stand-in), reshaped as the model's
    config says; 10 classes from a linear rule, or for the VAE noisy copies of 10 binary
    prototypes.
    """
    rng = np.random.default_rng(seed)
    if name == "snn":
        z = rng.standard_normal((n, 30))
        x = (z * np.logspace(-3, 3, 30) + np.linspace(-5, 500, 30)).astype("float32")
        return x, (z @ rng.standard_normal(30) > 0).astype("int64"), 2
    if name == "snn_vae":
        prototypes = rng.random((10, 64)) < 0.4
        x = prototypes[rng.integers(0, 10, n)] ^ (rng.random((n, 64)) < 0.05)
        return x.astype("float32"), None, None
    x = rng.random((n, 64)).astype("float32")
    y = np.argmax((x - 0.5) @ rng.standard_normal((64, 10)), -1).astype("int64")
    return x.reshape((n, *(config_of(name).feature_shape or (64,)))), y, 10


_TRAINED = {}
# XLA compilation costs seconds per model on a shared 2-core CPU. Keep it where a model adds
# something XLA could choke on (the RNN's SELU cell, the VAE's add_loss and sampling).
_TRAIN_WITHOUT_XLA = ("snn", "snn_cnn")


def _inference_loss(model, x, y):
    inputs, targets = model.training_pair(x, y)
    outputs = model(inputs, training=False)
    return float(model.loss(targets, outputs)) + float(sum(model.losses))


def trained(name):
    """The default model built on synthetic data and trained briefly; cached per module."""
    if name not in _TRAINED:
        keras.utils.set_random_seed(0)
        x, y, num_classes = synthetic(name)
        config = config_of(name, jit_compile=name not in _TRAIN_WITHOUT_XLA)
        model = build_model(config, info_for(x, num_classes))
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      jit_compile=config.jit_compile)
        before = _inference_loss(model, x, y)
        inputs, targets = model.training_pair(x, y)
        history = model.fit(inputs, targets, epochs=3, batch_size=config.batch_size, verbose=0)
        _TRAINED[name] = dict(model=model, x=x, y=y, before=before,
                              after=_inference_loss(model, x, y), history=history.history)
    return _TRAINED[name]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


# --- registry and configs --------------------------------------------------------------------


def test_registry_names():
    assert MODEL_NAMES == ("snn", "snn_vae", "snn_rnn", "snn_cnn")
    for name in MODEL_NAMES:
        assert callable(get_builder(name))


@pytest.mark.parametrize("bad", ["resnet", "", None, "SNN"])
def test_unknown_model_name_lists_registered_names(bad):
    for call in (lambda: get_builder(bad), lambda: build_model(config_of("snn", model=bad),
                                                                 None)):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert "\n" not in message and repr(bad) in message
        for name in MODEL_NAMES:
            assert name in message


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_config_fields(name):
    config = config_of(name)
    base = importlib.import_module("configs.base").get_config()
    assert config.model == name
    assert config.dataset == ("breast_cancer" if name == "snn" else "digits")
    assert set(base.keys()) <= set(config.keys())  # every model shares the base block
    assert config.optimizer == "adam" and config.learning_rate > 0
    assert config.mixed_precision is None and config.steps_per_epoch is None
    expected_shape = {"snn_cnn": (8, 8, 1), "snn_rnn": (8, 8)}.get(name)
    assert config.feature_shape == expected_shape


# --- every model: build, train ---------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_model_builds_and_loss_falls(name):
    result = trained(name)
    model = result["model"]
    assert model.name == name
    assert [t.name for t in model.inputs] == ["features"]
    assert np.all(np.isfinite(result["history"]["loss"]))
    assert result["after"] < result["before"], (result["before"], result["after"])
    if name == "snn_vae":
        assert isinstance(model, tasks.VAE) and model.likelihood == "bernoulli"
    else:
        assert isinstance(model, tasks.Classifier)
        assert model.logits.activation is keras.activations.linear
        assert model.output.shape[-1] == model.num_classes == (2 if name == "snn" else 10)
        assert "accuracy" in result["history"]


def test_regression_datasets_build_regressors_in_target_units():
    x, _, _ = synthetic("snn", n=128)
    y = (x[:, 0] * 3.0 + 50.0).astype("float32")
    model = build_model(config_of("snn", depth=2, width=32), info_for(x, None, y))
    assert isinstance(model, tasks.Regressor)
    assert model.target_mean == pytest.approx(float(np.mean(y)))
    assert model.target_std == pytest.approx(float(np.std(y)), rel=1e-5)
    # At initialization predictions are target_mean + target_std * (a standardized guess).
    prediction = np.asarray(model(x, training=False))
    assert abs(np.mean(prediction) - np.mean(y)) < 3 * np.std(y)


def test_no_lambda_layers_and_only_registered_or_builtin_classes():
    for name in MODEL_NAMES:
        model = trained(name)["model"]
        stack = list(model.layers)
        while stack:
            layer = stack.pop()
            assert not isinstance(layer, keras.layers.Lambda)
            module = type(layer).__module__
            assert module.startswith(("keras.", "selu_zoo.")), (name, layer.name, module)
            stack.extend(getattr(layer, "layers", []))
            if isinstance(layer, keras.layers.RNN):
                assert type(layer.cell).__module__.startswith("selu_zoo.")


def test_mixed_precision_policy_applies_to_body_only():
    x, y, _ = synthetic("snn", n=64)
    config = config_of("snn", mixed_precision="mixed_bfloat16", jit_compile=False, depth=2)
    model = build_model(config, info_for(x, 2))
    assert keras.config.dtype_policy().name == "float32"  # restored after building
    assert model.backbone.get_layer("selu_dense_0").compute_dtype == "bfloat16"
    assert model.backbone.get_layer("standardize").compute_dtype == "float32"
    assert model.logits.compute_dtype == "float32"
    model.compile(optimizer="adam")
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and model.output.dtype == "float32"


@pytest.mark.parametrize("name, shape", [("snn_cnn", (30,)), ("snn_rnn", (30,))])
def test_shape_the_family_cannot_take_names_the_field(name, shape):
    with pytest.raises(ValueError, match="config.feature_shape"):
        build_model(config_of(name), standard_info(shape))


@pytest.mark.parametrize("name", ["snn", "snn_vae"])
def test_image_shaped_datasets(name):
    x = np.random.default_rng(5).random((8, 8, 8, 1)).astype("float32")
    model = build_model(config_of(name), info_for(x, None if name == "snn_vae" else 10))
    expected = x.shape if name == "snn_vae" else (8, 10)
    assert tuple(model(x).shape) == expected
    if name == "snn_vae":
        assert np.isfinite(model.elbo(x, num_samples=2)).all()


# --- self-normalization at initialization ----------------------------------------------------


def _selu_layer_moments(backbone, x):
    """(name, mean, variance) of every SELU / SELUDense / residual output, in inference mode."""
    layers = [layer for layer in backbone.layers
              if isinstance(layer, (selu_zoo.layers.SELU, selu_zoo.layers.SELUDense))
              or layer.name.endswith("_rescale")]
    probe = keras.Model(backbone.inputs[0], [layer.output for layer in layers])
    outputs = probe.predict(x, batch_size=1024, verbose=0)
    return [(layer.name, float(np.mean(o)), float(np.var(o))) for layer, o in zip(layers, outputs)]


@pytest.mark.parametrize("residual", [False, True])
def test_snn_depth_32_self_normalizes(residual):
    model = build_model(config_of("snn", depth=32, residual=residual), standard_info((30,), 2))
    x = np.random.default_rng(1).standard_normal((2048, 30)).astype("float32")
    moments = _selu_layer_moments(model.backbone, x)
    assert len(moments) == (32 + 31 if residual else 32)
    for name, mean, variance in moments:
        assert abs(mean) < 0.1 and abs(variance - 1) < 0.15, (name, mean, variance)


def test_cnn_self_normalizes():
    # A 3x3 kernel on one input channel has only 9 weights per filter, so one draw of 32
    # filters can be off by ~10%; average the moments over three initializations.
    x = np.random.default_rng(2).standard_normal((2048, 8, 8, 1)).astype("float32")
    runs = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        model = build_model(config_of("snn_cnn"), standard_info((8, 8, 1)))
        runs.append(_selu_layer_moments(model.backbone, x))
    assert len(runs[0]) == len(config_of("snn_cnn").filters)
    for layer_runs in zip(*runs):
        mean = np.mean([m for _, m, _ in layer_runs])
        variance = np.mean([v for _, _, v in layer_runs])
        assert abs(mean) < 0.1 and abs(variance - 1) < 0.15, (layer_runs[0][0], mean, variance)


# --- VAE -------------------------------------------------------------------------------------


def _vae(**overrides):
    x, _, _ = synthetic("snn_vae", n=64)
    return build_model(config_of("snn_vae", **overrides), info_for(x, None)), x


@pytest.mark.parametrize("clip", [None, 10.0])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_loss_finite_on_extreme_inputs(likelihood, clip):
    model, _ = _vae(likelihood=likelihood, clip_standardized=clip)
    for value in (0.0, 1.0, 1e6):
        x = np.full((8, 64), value, np.float32)
        outputs = model(x, training=True)
        loss = float(model.reconstruction_loss()(x, outputs)) + float(sum(model.losses))
        assert math.isfinite(loss), value
        assert np.all(np.isfinite(model.elbo(x, num_samples=2))), value


def test_vae_evaluation_loss_is_reconstruction_at_the_mean_plus_kl():
    model, x = _vae()
    model.compile(optimizer="adam")
    loss = model.evaluate(x, x, batch_size=64, verbose=0)
    z_mean, z_log_var = (np.asarray(t, np.float64) for t in model.encoder(x))
    logits = np.asarray(model.decoder(z_mean.astype("float32")), np.float64)
    reconstruction = np.sum(np.maximum(logits, 0) - logits * x
                            + np.log1p(np.exp(-np.abs(logits))), axis=1)
    kl = 0.5 * np.sum(z_mean ** 2 + np.exp(z_log_var) - 1 - z_log_var, axis=1)
    np.testing.assert_allclose(loss, np.mean(reconstruction + kl), rtol=1e-4)


def test_vae_seeded_sampling_reproducible_and_inference_deterministic():
    draws = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model, x = _vae()
        draws.append([np.asarray(model(x, training=True)) for _ in range(2)])
        np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    assert not np.array_equal(draws[0][0], draws[0][1])


def test_vae_parts_share_the_full_models_variables():
    model, x = _vae()
    full_ids = {id(v) for v in model.weights}
    for part in (model.encoder, model.decoder):
        assert part.weights and {id(v) for v in part.weights} <= full_ids
    assert model.encoder.inputs[0].name == "features" and model.decoder.inputs[0].name == "z"
    before = model.run_endpoint("reconstruct", {"features": x})["x_mean"]
    bias = model.decoder.get_layer("x_parameter").bias
    bias.assign(bias.numpy() + 1.0)
    after = model.run_endpoint("reconstruct", {"features": x})["x_mean"]
    assert np.all(after > before)  # a larger logit bias raises every probability


def test_vae_gaussian_likelihood_loss():
    model, _ = _vae(likelihood="gaussian")
    assert model.likelihood == "gaussian"
    loss = model.reconstruction_loss()
    assert isinstance(loss, selu_zoo.losses.GaussianReconstruction) and loss.variance == 0.1
    assert set(model.run_endpoint("decode", {"z": np.zeros((2, 8), "float32")})) == {"x_mean"}


# --- RNN -------------------------------------------------------------------------------------


def test_rnn_unrolled_and_looped_agree():
    x = np.random.default_rng(3).random((16, 8, 8)).astype("float32")
    info = info_for(x, 10)
    looped = build_model(config_of("snn_rnn", unroll=False, depth=2), info)
    unrolled = build_model(config_of("snn_rnn", unroll=True, depth=2), info)
    unrolled.set_weights(looped.get_weights())
    np.testing.assert_allclose(np.asarray(unrolled(x)), np.asarray(looped(x)),
                               rtol=1e-5, atol=1e-5)
    assert unrolled.backbone.get_layer("selu_rnn_0").unroll
    assert not looped.backbone.get_layer("selu_rnn_0").unroll


def test_rnn_dropout_mask_is_constant_over_time():
    model = build_model(config_of("snn_rnn", dropout_rate=0.3), standard_info((8, 8)))
    dropout = model.backbone.get_layer("sequence_alpha_dropout_0")
    probe = keras.Model(model.backbone.inputs[0], dropout.output)
    x = np.random.default_rng(4).standard_normal((64, 8, 8)).astype("float32") + 5.0
    y = np.asarray(probe(x, training=True))
    a, b, alpha_prime = selu_zoo.theory.alpha_dropout_parameters(0.3)
    dropped = np.isclose(y, a * alpha_prime + b, atol=1e-5)
    assert 0.2 < dropped.mean() < 0.4
    np.testing.assert_array_equal(dropped, np.broadcast_to(dropped[:, :1, :], dropped.shape))
