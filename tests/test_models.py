"""models/ and configs/: registry, builders, training, save/load, self-normalization, VAE, RNN."""

import importlib
import math
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import selu_zoo
from selu_zoo.datasets import DatasetInfo
from models import MODEL_NAMES, build_model, compile_model, get_builder
from models import registry
from models import vae as vae_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DIGITS_NAMES = ("snn_vae", "snn_rnn", "snn_cnn")


def _config(name, **overrides):
    config = importlib.import_module(f"configs.{name}").get_config()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def _info_for(x, num_classes, name="synthetic"):
    return DatasetInfo(name=name, task="classification" if num_classes else "regression",
                       num_classes=num_classes, feature_shape=tuple(x.shape[1:]),
                       num_examples={"train": len(x)}, mean=x.mean(0), variance=x.var(0),
                       label_names=None)


def _standard_info(shape, num_classes=10):
    """Info whose standardization is the identity (mean 0, variance 1)."""
    return DatasetInfo("standard", "classification", num_classes, shape, {"train": 1},
                       np.zeros(shape), np.ones(shape), None)


def _synthetic(name, n=256, seed=0):
    """Raw (unstandardized) features and targets shaped like the default config's dataset.

    snn: 30 features on wildly different scales, 2 linearly separable classes (breast_cancer
    stand-in). The others: 64 features in [0, 1] (digits stand-in); 10 classes from a linear
    rule, or for the VAE noisy copies of 10 binary prototypes (the target is the input).
    """
    rng = np.random.default_rng(seed)
    if name == "snn":
        z = rng.standard_normal((n, 30))
        x = (z * np.logspace(-3, 3, 30) + np.linspace(-5, 500, 30)).astype("float32")
        return x, (z @ rng.standard_normal(30) > 0).astype("int32"), 2
    if name == "snn_vae":
        prototypes = rng.random((10, 64)) < 0.4
        x = prototypes[rng.integers(0, 10, n)] ^ (rng.random((n, 64)) < 0.05)
        return x.astype("float32"), x.astype("float32"), None
    x = rng.random((n, 64)).astype("float32")
    return x, np.argmax((x - 0.5) @ rng.standard_normal((64, 10)), -1).astype("int32"), 10


_TRAINED = {}
# XLA compilation costs seconds per model on a shared 2-core CPU. Keep it where a model adds
# something XLA could choke on (the RNN's SELU cell, the VAE's add_loss and sampling); the
# plain Dense / Conv2D graphs of snn and snn_cnn train without it here (the SELU ops' XLA
# gradients are covered in test_ops.py and test_layers.py).
_TRAIN_WITHOUT_XLA = ("snn", "snn_cnn")


def _inference_loss(model, x, y):
    """The compiled loss in inference mode, eagerly (no extra XLA compilations)."""
    outputs = model(x, training=False)
    return float(model.loss(y, outputs)) + float(sum(model.losses))


def _trained(name):
    """Builds the default model on synthetic data, trains it briefly; cached per module."""
    if name not in _TRAINED:
        keras.utils.set_random_seed(0)
        x, y, num_classes = _synthetic(name)
        info = _info_for(x, num_classes)
        config = _config(name)
        if name in _TRAIN_WITHOUT_XLA:
            config.jit_compile = False
        model = build_model(name, config, info)
        compile_model(model, config)
        before = _inference_loss(model, x, y)
        history = model.fit(x, y, epochs=3, batch_size=config.batch_size, verbose=0)
        after = _inference_loss(model, x, y)
        _TRAINED[name] = dict(model=model, x=x, y=y, before=before, after=after,
                              history=history.history)
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
    for call in (lambda: get_builder(bad), lambda: build_model(bad, _config("snn"), None)):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert "\n" not in message and repr(bad) in message
        for name in MODEL_NAMES:
            assert name in message


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_config_fields(name):
    config = _config(name)
    assert config.model == name
    assert config.dataset == ("breast_cancer" if name == "snn" else "digits")
    assert config.optimizer in ("adam", "sgd") and config.learning_rate > 0
    assert isinstance(config.jit_compile, bool)
    assert config.mixed_precision is None and config.steps_per_epoch is None
    for field in ("epochs", "batch_size", "seed"):
        assert isinstance(config[field], int) and config[field] >= 0
    expected_shape = {"snn_cnn": (8, 8, 1), "snn_rnn": (8, 8)}.get(name)
    assert config.feature_shape == expected_shape


def test_unknown_optimizer_rejected():
    with pytest.raises(ValueError, match="adam, sgd"):
        registry.make_optimizer(_config("snn", optimizer="rmsprop"))


# --- every model: build, train, save and load ------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_model_builds_and_loss_falls(name):
    result = _trained(name)
    model = result["model"]
    assert model.name == name
    assert [t.name for t in model.inputs] == ["features"]
    assert np.all(np.isfinite(result["history"]["loss"]))
    assert result["after"] < result["before"], (result["before"], result["after"])
    if name == "snn_vae":
        assert model.get_layer("decoder").layers[-1].name == "x_logits"
    else:
        logits = model.get_layer("logits")
        assert model.outputs[0] is logits.output and logits.activation is keras.activations.linear
        assert model.output.shape[-1] == (2 if name == "snn" else 10)
        assert "accuracy" in result["history"]


def test_no_lambda_layers_and_only_registered_or_builtin_classes():
    for name in MODEL_NAMES:
        model = _trained(name)["model"]
        stack = list(model.layers)
        while stack:
            layer = stack.pop()
            assert not isinstance(layer, keras.layers.Lambda)
            module = type(layer).__module__
            assert module.startswith(("keras.", "selu_zoo.")), (name, layer.name, module)
            stack.extend(getattr(layer, "layers", []))
            if isinstance(layer, keras.layers.RNN):
                assert type(layer.cell).__module__.startswith("selu_zoo.")


_LOAD_SCRIPT = """
import sys
import numpy as np, keras, selu_zoo
assert 'models' not in sys.modules
for name in sys.argv[1:]:
    model = keras.models.load_model(name + '.keras', safe_mode=True)
    x = np.load(name + '_x.npy')
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.load(name + '_y.npy'))
    assert model.loss is not None, name
    print('LOADED', name, type(model.loss).__name__, flush=True)
"""


def test_keras_files_load_in_fresh_process_with_identical_outputs(tmp_path):
    for name in MODEL_NAMES:
        result = _trained(name)
        x = result["x"][:16]
        result["model"].save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_y.npy", np.asarray(result["model"](x, training=False)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, *MODEL_NAMES], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    for name in MODEL_NAMES:
        assert f"LOADED {name}" in process.stdout
    assert "BernoulliReconstruction" in process.stdout


def test_mixed_precision_policy_applies_to_body_only():
    x, y, _ = _synthetic("snn", n=64)
    config = _config("snn", mixed_precision="mixed_bfloat16", jit_compile=False, depth=2)
    model = build_model("snn", config, _info_for(x, 2))
    assert keras.config.dtype_policy().name == "float32"  # restored after building
    assert model.get_layer("selu_dense_0").compute_dtype == "bfloat16"
    assert model.get_layer("standardize").compute_dtype == "float32"
    assert model.get_layer("logits").compute_dtype == "float32"
    compile_model(model, config)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and model.output.dtype == "float32"


def test_feature_shape_mismatch_rejected():
    info = _standard_info((30,), 2)
    with pytest.raises(ValueError, match="feature_shape"):
        build_model("snn_cnn", _config("snn_cnn"), info)


def test_cnn_takes_image_shaped_datasets_without_reshape():
    model = build_model("snn_cnn", _config("snn_cnn"), _standard_info((8, 8, 1)))
    assert model.input.shape == (None, 8, 8, 1)
    assert "to_body_shape" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", ["snn", "snn_vae", "snn_rnn"])
def test_image_shaped_datasets(name):
    x = np.random.default_rng(5).random((8, 8, 8, 1)).astype("float32")
    config = _config(name, feature_shape=(8, 8)) if name == "snn_rnn" else _config(name)
    model = build_model(name, config, _info_for(x, None if name == "snn_vae" else 10))
    expected = x.shape if name == "snn_vae" else (8, 10)
    assert tuple(model(x).shape) == expected
    if name == "snn_vae":
        assert np.isfinite(vae_lib.negative_elbo(model, x, seed=0)).all()


# --- self-normalization at initialization ----------------------------------------------------


def _selu_layer_moments(model, x):
    """(name, mean, variance) of every SELU / SELUDense output, in inference mode."""
    layers = [layer for layer in model.layers
              if isinstance(layer, (selu_zoo.layers.SELU, selu_zoo.layers.SELUDense))
              or layer.name.endswith("_rescale")]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    outputs = probe.predict(x, batch_size=1024, verbose=0)
    return [(layer.name, float(np.mean(o)), float(np.var(o))) for layer, o in zip(layers, outputs)]


@pytest.mark.parametrize("residual", [False, True])
def test_snn_depth_32_self_normalizes(residual):
    model = build_model("snn", _config("snn", depth=32, residual=residual),
                        _standard_info((30,), 2))
    x = np.random.default_rng(1).standard_normal((2048, 30)).astype("float32")
    moments = _selu_layer_moments(model, x)
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
        model = build_model("snn_cnn", _config("snn_cnn"), _standard_info((8, 8, 1)))
        runs.append(_selu_layer_moments(model, x))
    assert len(runs[0]) == len(_config("snn_cnn").filters)
    for layer_runs in zip(*runs):
        mean = np.mean([m for _, m, _ in layer_runs])
        variance = np.mean([v for _, _, v in layer_runs])
        assert abs(mean) < 0.1 and abs(variance - 1) < 0.15, (layer_runs[0][0], mean, variance)


# --- VAE -------------------------------------------------------------------------------------


def _vae(**overrides):
    x, _, _ = _synthetic("snn_vae", n=64)
    config = _config("snn_vae", **overrides)
    return build_model("snn_vae", config, _info_for(x, None)), config, x


def _negative_elbo_training_mode(model, config, x):
    outputs = model(x, training=True)
    reconstruction = vae_lib.reconstruction_loss(config)(x, outputs)
    return float(reconstruction) + float(sum(model.losses))


@pytest.mark.parametrize("clip", [None, 10.0])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_loss_finite_on_extreme_inputs(likelihood, clip):
    model, config, _ = _vae(likelihood=likelihood, clip_standardized=clip)
    for value in (0.0, 1.0, 1e6):
        x = np.full((8, 64), value, np.float32)
        assert math.isfinite(_negative_elbo_training_mode(model, config, x)), value
        assert np.all(np.isfinite(vae_lib.negative_elbo(model, x, seed=0))), value


def test_vae_loss_is_negative_elbo():
    model, config, x = _vae()
    compile_model(model, config)
    loss = model.evaluate(x, x, batch_size=64, verbose=0)
    z_mean, z_log_var = vae_lib.encode(model, x)
    logits = np.asarray(model.get_layer("decoder")(z_mean))  # inference: z is the mean
    reconstruction = np.sum(np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits))),
                            axis=1)
    kl = 0.5 * np.sum(z_mean ** 2 + np.exp(z_log_var) - 1 - z_log_var, axis=1)
    np.testing.assert_allclose(loss, np.mean(reconstruction + kl), rtol=1e-4)


def test_vae_seeded_sampling_reproducible_and_inference_deterministic():
    draws = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model, _, x = _vae()
        draws.append([np.asarray(model(x, training=True)) for _ in range(2)])
        np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    assert not np.array_equal(draws[0][0], draws[0][1])
    np.testing.assert_array_equal(vae_lib.sample(model, 4, seed=3), vae_lib.sample(model, 4, seed=3))


def test_vae_parts_share_the_full_models_variables():
    model, _, x = _vae()
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    sampler = vae_lib.sampler(model)
    full_ids = {id(v) for v in model.weights}
    for part in (encoder, decoder, sampler):
        assert part.weights and {id(v) for v in part.weights} <= full_ids
    assert {id(v) for v in sampler.weights} == {id(v) for v in decoder.weights}
    assert encoder.input.name == "features" and decoder.input.name == "z"
    assert encoder.outputs == [encoder.get_layer("z_mean").output,
                               encoder.get_layer("z_log_var").output]

    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    before = (np.asarray(model(x)), vae_lib.decode(model, z), vae_lib.encode(model, x)[0])
    bias = decoder.get_layer("x_logits").bias
    bias.assign(bias.numpy() + 1.0)
    kernel = encoder.get_layer("z_mean").kernel
    kernel.assign(kernel.numpy() * 2.0)
    after = (np.asarray(model(x)), vae_lib.decode(model, z), vae_lib.encode(model, x)[0])
    for old, new in zip(before, after):
        assert not np.allclose(old, new)
    assert vae_lib.reconstruct(model, x).shape == x.shape
    assert np.all((vae_lib.sample(model, 5, seed=0) >= 0) & (vae_lib.sample(model, 5, seed=0) <= 1))


def test_vae_gaussian_decoder_output_name():
    model, config, _ = _vae(likelihood="gaussian")
    assert model.get_layer("decoder").layers[-1].name == "x_mean"
    assert vae_lib.likelihood_of(model) == "gaussian"
    assert isinstance(vae_lib.reconstruction_loss(config), selu_zoo.losses.GaussianReconstruction)


# --- RNN -------------------------------------------------------------------------------------


def test_rnn_unrolled_and_looped_agree():
    x = np.random.default_rng(3).random((16, 64)).astype("float32")
    info = _info_for(x, 10)
    looped = build_model("snn_rnn", _config("snn_rnn", unroll=False, depth=2), info)
    unrolled = build_model("snn_rnn", _config("snn_rnn", unroll=True, depth=2), info)
    unrolled.set_weights(looped.get_weights())
    np.testing.assert_allclose(np.asarray(unrolled(x)), np.asarray(looped(x)),
                               rtol=1e-5, atol=1e-5)
    assert unrolled.get_layer("selu_rnn_0").unroll and not looped.get_layer("selu_rnn_0").unroll


def test_rnn_dropout_mask_is_constant_over_time():
    model = build_model("snn_rnn", _config("snn_rnn", dropout_rate=0.3),
                        _standard_info((8, 8)))
    dropout = model.get_layer("sequence_alpha_dropout_0")
    probe = keras.Model(model.input, dropout.output)
    x = np.random.default_rng(4).standard_normal((64, 8, 8)).astype("float32") + 5.0
    y = np.asarray(probe(x, training=True))
    _, _, alpha_prime = selu_zoo.theory.alpha_dropout_parameters(0.3)
    a, b, _ = selu_zoo.theory.alpha_dropout_parameters(0.3)
    dropped = np.isclose(y, a * alpha_prime + b, atol=1e-5)
    assert 0.2 < dropped.mean() < 0.4
    np.testing.assert_array_equal(dropped, np.broadcast_to(dropped[:, :1, :], dropped.shape))
