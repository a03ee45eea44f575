"""The layers the model zoo added: SELURNNCell, VAESampling, MirrorPadding2D, Clip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from selu_zoo import ops
from selu_zoo.layers import Clip, MirrorPadding2D, SELURNNCell, VAESampling

LAYER_FACTORIES = {
    "SELURNNCell": lambda: SELURNNCell(6, use_bias=False, recurrent_regularizer="l2"),
    "VAESampling": lambda: VAESampling(seed=3, kl_weight=0.5, min_log_var=-10.0,
                                       max_log_var=5.0, sample_in_inference=True),
    "MirrorPadding2D": lambda: MirrorPadding2D(((1, 2), (0, 1)), mode="symmetric"),
    "Clip": lambda: Clip(-2.0, 3.0),
}


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.mark.parametrize("name", list(LAYER_FACTORIES))
def test_get_config_round_trip(name):
    layer = LAYER_FACTORIES[name]()
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


# --- SELURNNCell -----------------------------------------------------------------------------


def _rnn_reference(x, kernel, recurrent, bias):
    h = np.zeros((x.shape[0], recurrent.shape[0]))
    for t in range(x.shape[1]):
        h = ops.selu(x[:, t] @ kernel + h @ recurrent + bias).numpy()
    return h


@pytest.mark.parametrize("unroll", [False, True])
def test_selu_rnn_cell_matches_numpy(unroll):
    x = np.random.default_rng(0).standard_normal((4, 5, 3))
    layer = keras.layers.RNN(SELURNNCell(7, dtype="float64"), unroll=unroll, dtype="float64")
    y = layer(x).numpy()
    cell = layer.cell
    assert isinstance(cell.kernel_initializer, keras.initializers.LecunNormal)
    assert isinstance(cell.recurrent_initializer, keras.initializers.LecunNormal)
    expected = _rnn_reference(x, cell.kernel.numpy(), cell.recurrent_kernel.numpy(),
                              cell.bias.numpy())
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def _recurrent_fixed_point():
    """(mean, variance) with selu(N(0, 1 + E[h^2])) = h: LeCun x and h kernels, unit inputs."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    mean, variance = 0.0, 1.0
    for _ in range(200):
        h = ops.selu(np.sqrt(1 + variance + mean ** 2) * nodes).numpy()
        mean, variance = weights @ h, weights @ h ** 2 - (weights @ h) ** 2
    return mean, variance


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_selu_rnn_state_converges_to_its_fixed_point(scale):
    x = tf.random.stateless_normal([1024, 20, 64], seed=[1, 1])
    init = keras.initializers.VarianceScaling(scale, "fan_in", "truncated_normal")
    cell = SELURNNCell(256, kernel_initializer=init, recurrent_initializer=init)
    y = keras.layers.RNN(cell, return_sequences=True)(x).numpy()[:, -5:]
    mean, variance = _recurrent_fixed_point() if scale == 1.0 else (0.0, 1.0)
    assert abs(y.mean() - mean) < 0.1, (y.mean(), mean)
    assert abs(y.var() / variance - 1) < 0.15, (y.var(), variance)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_selu_rnn_cell_mixed_precision(policy):
    layer = keras.layers.RNN(SELURNNCell(4, dtype=policy), dtype=policy)
    y = layer(tf.random.stateless_normal([2, 3, 5], seed=[2, 2]))
    assert y.dtype == policy.split("_")[1] and layer.cell.kernel.dtype == "float32"


def test_selu_rnn_cell_trains_under_jit_compile():
    inputs = keras.Input((6, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.RNN(SELURNNCell(8))(inputs)))
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    x = np.random.default_rng(1).standard_normal((64, 6, 3)).astype("float32")
    history = model.fit(x, x.sum(axis=(1, 2)), epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("units", [0, -1, 1.5, True])
def test_selu_rnn_cell_rejects_bad_units(units):
    with pytest.raises(ValueError, match="units"):
        SELURNNCell(units)


# --- VAESampling -----------------------------------------------------------------------------


def test_vae_sampling_math_and_kl():
    rng = np.random.default_rng(0)
    mean = rng.standard_normal((50_000, 2)).astype("float32") * 0 + [1.0, -2.0]
    log_var = np.zeros_like(mean) + np.log([0.25, 4.0]).astype("float32")
    layer = VAESampling(seed=1)
    z = layer([mean, log_var], training=True).numpy()
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(z.var(0), [0.25, 4.0], rtol=0.03)
    kl = 0.5 * np.sum(mean ** 2 + np.exp(log_var) - 1 - log_var, axis=1).mean()
    np.testing.assert_allclose(float(layer.losses[0]), kl, rtol=1e-5)
    np.testing.assert_array_equal(layer([mean, log_var], training=False).numpy(), mean)
    assert len(layer.losses) == 1  # recomputed on each call, KL also in inference


def test_vae_sampling_clamps_log_variance():
    layer = VAESampling(seed=1, min_log_var=-5.0, max_log_var=5.0)
    mean = np.zeros((4, 3), "float32")
    z = layer([mean, np.full((4, 3), 1e4, "float32")], training=True).numpy()
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) < 10 * np.exp(2.5))
    assert np.isfinite(float(layer.losses[0]))
    layer([mean, np.full((4, 3), -1e4, "float32")], training=True)
    np.testing.assert_allclose(float(layer.losses[0]), 3 * 0.5 * (np.exp(-5.0) - 1 + 5.0),
                               rtol=1e-5)


def test_vae_sampling_seeded_and_varying():
    mean, log_var = np.zeros((8, 4), "float32"), np.zeros((8, 4), "float32")
    a, b = VAESampling(seed=7), VAESampling(seed=7)
    draws_a = [a([mean, log_var], training=True).numpy() for _ in range(2)]
    draws_b = [b([mean, log_var], training=True).numpy() for _ in range(2)]
    np.testing.assert_array_equal(draws_a, draws_b)
    assert not np.array_equal(draws_a[0], draws_a[1])


def test_vae_sampling_outputs_compute_dtype():
    layer = VAESampling(seed=0, dtype="mixed_bfloat16")
    z = layer([tf.zeros([2, 3]), tf.zeros([2, 3])], training=True)
    assert z.dtype == "bfloat16" and layer.losses[0].dtype == "float32"


@pytest.mark.parametrize("kwargs", [{"kl_weight": -1.0}, {"kl_weight": float("nan")},
                                    {"min_log_var": 5.0, "max_log_var": 5.0},
                                    {"max_log_var": 100.0}])
def test_vae_sampling_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        VAESampling(**kwargs)


# --- MirrorPadding2D and Clip ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_mirror_padding_matches_numpy(mode, data_format):
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype("float32")
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2)
    layer = MirrorPadding2D(((1, 2), (2, 1)), mode=mode, data_format=data_format)
    spatial = [(1, 2), (2, 1)]
    pads = [(0, 0), *spatial, (0, 0)] if data_format == "channels_last" else [(0, 0), (0, 0),
                                                                              *spatial]
    expected = np.pad(x, pads, mode=mode)
    np.testing.assert_array_equal(layer(x).numpy(), expected)
    assert layer.compute_output_shape(x.shape) == expected.shape


def test_mirror_padding_keeps_conv_variance_at_the_border():
    x = tf.random.stateless_normal([512, 8, 8, 1], seed=[3, 3])
    conv = keras.layers.Conv2D(64, 3, kernel_initializer="lecun_normal", use_bias=False)
    y_mirror = conv(MirrorPadding2D(1)(x)).numpy()
    border = np.ones((8, 8), bool)
    border[1:-1, 1:-1] = False
    zeros = keras.layers.Conv2D(64, 3, padding="same", use_bias=False)
    zeros.build(x.shape)
    zeros.kernel.assign(conv.kernel)
    y_zeros = zeros(x).numpy()
    interior = y_mirror[:, 1:-1, 1:-1].var()
    assert abs(y_mirror[:, border].var() / interior - 1) < 0.15
    assert y_zeros[:, border].var() / interior < 0.85


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), "same"])
def test_mirror_padding_rejects_bad_arguments(padding):
    with pytest.raises((ValueError, TypeError)):
        MirrorPadding2D(padding)
    with pytest.raises(ValueError, match="mode"):
        MirrorPadding2D(1, mode="constant")


def test_clip():
    x = np.array([[-1e9, -2.5, 0.0, 2.9, np.inf]], "float32")
    np.testing.assert_array_equal(Clip(-2.0, 3.0)(x).numpy(),
                                  np.array([[-2.0, -2.0, 0.0, 2.9, 3.0]], "float32"))
    with pytest.raises(ValueError, match="min_value"):
        Clip(1.0, 1.0)
