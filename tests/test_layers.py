"""selu_zoo.layers: behaviour, statistics, mixed precision and serialization."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import selu_zoo
from selu_zoo import ops, theory
from selu_zoo.layers import SELU, AlphaDropout, FeatureAlphaDropout, SELUDense

LAYER_FACTORIES = {
    "SELU": lambda: SELU(),
    "AlphaDropout": lambda: AlphaDropout(0.1, noise_shape=(None, 1, None), seed=3,
                                         mean=0.1, variance=1.2),
    "FeatureAlphaDropout": lambda: FeatureAlphaDropout(0.2, seed=4),
    "SELUDense": lambda: SELUDense(5, dropout_rate=0.05, seed=5, use_bias=False,
                                   kernel_regularizer="l2"),
}


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_selu_layer_is_the_op():
    x = tf.random.stateless_normal([8, 3], seed=[1, 1])
    np.testing.assert_array_equal(SELU()(x).numpy(), ops.selu(x).numpy())


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_mixed_precision_outputs_compute_dtype(policy, name):
    layer = type(LAYER_FACTORIES[name]()).from_config(
        {**LAYER_FACTORIES[name]().get_config(), "dtype": policy})
    x = tf.random.stateless_normal([4, 6, 8], seed=[2, 2])
    for training in (False, True):
        y = layer(x, training=training)
        assert y.dtype == policy.split("_")[1]
    if name == "SELUDense":
        assert layer.kernel.dtype == "float32"  # variables stay float32 under mixed policies
        reference = ops.selu_dense(x, layer.kernel, None).numpy()
        np.testing.assert_allclose(layer(x).numpy().astype(np.float32), reference,
                                   rtol=0.02, atol=0.02)


@pytest.mark.parametrize("layer_cls", [AlphaDropout, FeatureAlphaDropout])
def test_inference_is_exact_identity(layer_cls):
    x = tf.random.stateless_normal([4, 5, 6], seed=[3, 3])
    layer = layer_cls(0.5, seed=1)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.5])
@pytest.mark.parametrize("fixed_point", [(0.0, 1.0), (0.2, 0.8)])
def test_alpha_dropout_layer_keeps_moments(rate, fixed_point):
    mean, variance = fixed_point
    x = mean + np.sqrt(variance) * tf.random.stateless_normal([1_000, 1_000], seed=[4, 4])
    y = AlphaDropout(rate, seed=2, mean=mean, variance=variance)(x, training=True).numpy()
    assert abs(y.mean() - mean) < 0.01
    assert abs(y.var() / variance - 1.0) < 0.02


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2.0, float("nan"), None, "0.1"])
@pytest.mark.parametrize("factory", [
    lambda r: AlphaDropout(r), lambda r: FeatureAlphaDropout(r),
    lambda r: SELUDense(3, dropout_rate=r)])
def test_invalid_rates_rejected_at_construction(rate, factory):
    with pytest.raises(ValueError, match="rate"):
        factory(rate)


def test_seeded_masks_reproducible_and_differ_between_steps():
    x = tf.ones([64, 32])
    first, second = AlphaDropout(0.5, seed=9), AlphaDropout(0.5, seed=9)
    masks_a = [first(x, training=True).numpy() for _ in range(3)]
    masks_b = [second(x, training=True).numpy() for _ in range(3)]
    for a, b in zip(masks_a, masks_b):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(masks_a[0], masks_a[1])


def test_feature_alpha_dropout_one_mask_per_example_and_channel():
    x = tf.ones([8, 5, 5, 16])
    y = FeatureAlphaDropout(0.5, seed=1)(x, training=True).numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :1, :], y.shape))
    per_channel = y[:, 0, 0, :]
    assert 0.3 < np.mean(per_channel != per_channel.max()) < 0.7
    y_first = FeatureAlphaDropout(0.5, seed=1, data_format="channels_first")(
        x, training=True).numpy()
    np.testing.assert_array_equal(y_first, np.broadcast_to(y_first[:, :, :1, :1], y.shape))


def test_feature_alpha_dropout_rejects_bad_data_format():
    with pytest.raises(ValueError, match="data_format"):
        FeatureAlphaDropout(0.1, data_format="nhwc")


def test_selu_dense_defaults_and_math():
    layer = SELUDense(16)
    x = tf.random.stateless_normal([32, 400], seed=[5, 5])
    y = layer(x)
    assert isinstance(layer.kernel_initializer, keras.initializers.LecunNormal)
    np.testing.assert_allclose(np.var(layer.kernel.numpy()), 1 / 400, rtol=0.1)
    np.testing.assert_allclose(
        y.numpy(), ops.selu(x @ layer.kernel + layer.bias).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(layer(x, training=True).numpy(), y.numpy())  # no dropout


def test_selu_dense_dropout_only_in_training():
    layer = SELUDense(64, dropout_rate=0.2, seed=1)
    x = tf.random.stateless_normal([16, 8], seed=[6, 6])
    inference = layer(x).numpy()
    training = layer(x, training=True).numpy()
    _, _, alpha_prime = theory.alpha_dropout_parameters(0.2)
    a, b, _ = theory.alpha_dropout_parameters(0.2)
    dropped = np.isclose(training, a * alpha_prime + b, atol=1e-6)
    assert 0.1 < dropped.mean() < 0.3
    np.testing.assert_allclose(training[~dropped], a * inference[~dropped] + b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("units", [0, -3, 2.5, True])
def test_selu_dense_rejects_bad_units(units):
    with pytest.raises(ValueError, match="units"):
        SELUDense(units)


def _stack_statistics(width, depth, activation_layer, initializer, x):
    h = x
    for _ in range(depth):
        if activation_layer is None:
            h = SELUDense(width, kernel_initializer=initializer)(h)
        else:
            h = activation_layer(keras.layers.Dense(width, kernel_initializer=initializer)(h))
    h = h.numpy()
    return h.mean(), h.var()


@pytest.mark.parametrize("input_moments", [(0.0, 1.0), (3.0, 9.0)])
def test_64_layer_selu_stack_self_normalizes(input_moments):
    mean, variance = input_moments
    x = mean + np.sqrt(variance) * tf.random.stateless_normal([1024, 256], seed=[7, 7])
    out_mean, out_var = _stack_statistics(256, 64, None, "lecun_normal", x)
    assert abs(out_mean) < 0.1, out_mean
    assert abs(out_var - 1.0) < 0.15, out_var


def test_64_layer_relu_glorot_stack_does_not():
    x = tf.random.stateless_normal([1024, 256], seed=[7, 7])
    out_mean, out_var = _stack_statistics(256, 64, keras.activations.relu, "glorot_uniform", x)
    assert abs(out_mean) > 0.1 or abs(out_var - 1.0) > 0.15


@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_get_config_round_trip(name):
    layer = LAYER_FACTORIES[name]()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def _child_env():
    """Environment of a child Python that imports this checkout's selu_zoo.

    Without it, a child started in another directory imports whichever selu_zoo is installed
    (an editable install of another checkout, say), not the code under test.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(selu_zoo.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path}


def _all_layers_model():
    inputs = keras.Input((6, 8), name="x")
    h = SELUDense(8, dropout_rate=0.1, seed=1)(inputs)
    h = AlphaDropout(0.1, noise_shape=(None, 1, None), seed=2)(h)
    h = FeatureAlphaDropout(0.1, seed=3)(h)
    h = SELU()(h)
    return keras.Model(inputs, SELUDense(3)(h))


def test_keras_file_round_trip_in_process(tmp_path):
    model = _all_layers_model()
    x = np.random.default_rng(0).normal(size=(4, 6, 8)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]


def test_keras_file_loads_in_fresh_process_from_another_directory(tmp_path):
    model = _all_layers_model()
    x = np.random.default_rng(0).normal(size=(4, 6, 8)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    script = (
        "import numpy as np, keras, selu_zoo\n"
        "m = keras.models.load_model('m.keras', safe_mode=True)\n"
        "np.testing.assert_array_equal(m.predict(np.load('x.npy'), verbose=0), np.load('y.npy'))\n"
        "print('LOADED', type(m.layers[1]).__module__, selu_zoo.__file__)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=_child_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"LOADED selu_zoo.layers.dense {selu_zoo.__file__}" in result.stdout


def test_layers_train_under_jit_compile():
    model = _all_layers_model()
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x = np.random.default_rng(1).normal(size=(64, 6, 8)).astype("float32")
    y = np.random.default_rng(2).normal(size=(64, 6, 3)).astype("float32")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]


def _reaches_xla(concrete_function):
    """Whether a traced graph (or any function it calls) is marked for XLA compilation."""
    graph_def = concrete_function.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        if function.attr["_XlaMustCompile"].b:
            return True
        nodes.extend(function.node_def)
    return any(node.attr["_XlaMustCompile"].b for node in nodes)


def test_inference_graph_reaches_no_xla_but_training_does():
    model = _all_layers_model()
    spec = tf.TensorSpec([None, 6, 8], tf.float32)
    inference = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    assert not _reaches_xla(inference)  # what a SavedModel for TF Serving would contain
    training = tf.function(lambda x: model(x, training=True)).get_concrete_function(spec)
    assert _reaches_xla(training)  # the fused dropout path, and the check itself works


_REPLICAS_SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np, selu_zoo
x = np.random.default_rng(0).normal(size=(64, 48)).astype("float32")

def masks_of(strategy, layer_class, steps=3):
    with strategy.scope():
        layer = layer_class(0.3, seed=3)
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(x).repeat(steps))
    out = []
    for batch in data:
        result = strategy.run(lambda b: layer(b, training=True), args=(batch,))
        out.append(np.concatenate(
            [v.numpy() for v in strategy.experimental_local_results(result)]))
    return np.stack(out)

for layer_class in (selu_zoo.layers.AlphaDropout, selu_zoo.layers.SELUDense):
    if layer_class is selu_zoo.layers.SELUDense:
        def layer_class(rate, seed, _cls=layer_class):
            return _cls(8, dropout_rate=rate, seed=seed, kernel_initializer="ones")
    one = masks_of(tf.distribute.OneDeviceStrategy("/cpu:0"), layer_class)
    two = masks_of(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), layer_class)
    assert one.shape == two.shape == (3, 64, one.shape[-1]), one.shape
    assert not np.array_equal(one[0], one[1])  # a new mask at every step
    assert not np.array_equal(one[0, :32], one[0, 32:])  # and for every example
    np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-6)
print("SAME MASKS")
"""


def test_two_replicas_draw_the_masks_of_one_replica(tmp_path):
    """Masks are keyed by the global example index: replica r offsets its rows by r times
    its share of the batch, so a mirrored run drops what a one-device run drops."""
    result = subprocess.run([sys.executable, "-c", _REPLICAS_SCRIPT], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env=_child_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SAME MASKS" in result.stdout
