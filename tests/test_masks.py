"""Alpha-dropout masks against an independent NumPy model of the hash, on every backend.

Backend-neutral (``keras.ops`` and NumPy only): tests/test_backends.py runs this module under
JAX and PyTorch too, so "the same seed gives the same mask everywhere" is checked by each
backend agreeing with the same NumPy reference.
"""

import keras
import numpy as np
import pytest

from selu_zoo import layers, ops, theory
from selu_zoo.ops import masks

M32 = 0xFFFFFFFF


def _fmix32(h):
    h = h & M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def reference_keep(shape, seed, step, rate, example_offset=0):
    """The keep mask as the module docstring of `selu_zoo.ops.masks` defines it, in uint64."""
    threshold = min(max(round(rate * 2.0**31), 1), 2**31 - 1)
    key = _fmix32(_fmix32(np.uint64(seed)) + np.uint64(step) * np.uint64(0x9E3779B1))
    size = int(np.prod(shape))
    counter = np.arange(size, dtype=np.uint64)
    if shape[0] != 1:
        counter += np.uint64(example_offset * (size // shape[0]))
    words = _fmix32(counter * np.uint64(0x9E3779B1) + key)
    return ((words >> 1) >= threshold).reshape(shape)


def _dropped(y, rate):
    a, b, alpha_prime = theory.alpha_dropout_parameters(
        1 - ops.alpha_dropout_keep_probability(rate))
    return np.isclose(keras.ops.convert_to_numpy(y).astype(np.float64), a * alpha_prime + b,
                      rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(64, 33), (7, 5, 3), (1, 100)])
def test_keep_mask_is_the_reference_hash(shape):
    for step in (0, 1, 12345):
        got = keras.ops.convert_to_numpy(masks.keep_mask(
            shape, keras.ops.convert_to_tensor([17, step], "int32"),
            masks.dropout_parameters(0.3).threshold))
        np.testing.assert_array_equal(got, reference_keep(shape, 17, step, 0.3))


def test_an_example_offset_continues_the_global_counter():
    whole = reference_keep((8, 6), 5, 2, 0.5)
    second_half = keras.ops.convert_to_numpy(masks.keep_mask(
        (4, 6), keras.ops.convert_to_tensor([5, 2], "int32"),
        masks.dropout_parameters(0.5).threshold, example_offset=4))
    np.testing.assert_array_equal(second_half, whole[4:])


def test_alpha_dropout_layer_draws_the_reference_masks_step_after_step():
    """``AlphaDropout(0.2, seed=3)``: the mask of its n-th training call is the reference's
    (seed 3, step n), on every backend."""
    layer = layers.AlphaDropout(0.2, seed=3)
    x = np.zeros((32, 40), np.float32)
    for step in range(3):
        kept = ~_dropped(layer(x, training=True), 0.2)
        np.testing.assert_array_equal(kept, reference_keep(x.shape, 3, step, 0.2))


def test_selu_dense_dropout_draws_the_reference_masks():
    layer = layers.SELUDense(24, dropout_rate=0.2, seed=11, kernel_initializer="ones")
    x = np.full((16, 4), 0.25, np.float32)
    kept = ~_dropped(layer(x, training=True), 0.2)
    np.testing.assert_array_equal(kept, reference_keep((16, 24), 11, 0, 0.2))


def test_feature_alpha_dropout_keys_one_draw_per_example_and_channel():
    layer = layers.FeatureAlphaDropout(0.4, seed=2)
    x = np.zeros((6, 5, 7), np.float32)
    kept = ~_dropped(layer(x, training=True), 0.4)
    expected = reference_keep((6, 1, 7), 2, 0, 0.4)
    np.testing.assert_array_equal(kept, np.broadcast_to(expected, x.shape))


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_the_fixed_point(rate):
    x = np.random.default_rng(0).standard_normal((4000, 250)).astype(np.float32)
    y = keras.ops.convert_to_numpy(ops.alpha_dropout(x, rate, seed=7)).astype(np.float64)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1.0) < 0.01
    assert abs(_dropped(y, rate).mean() - rate) < 0.005


def test_mask_bits_look_independent():
    """Drop fraction and neighbour correlation at rate 0.5 on 1e6 units, and consecutive
    steps uncorrelated."""
    n = 1_000_000
    drawn = [reference_keep((1, n), 3, step, 0.5).ravel().astype(np.float64)
             for step in range(3)]
    for m in drawn:
        assert abs(m.mean() - 0.5) < 5 * 0.5 / np.sqrt(n)
        centered = m - m.mean()
        assert abs(np.mean(centered[1:] * centered[:-1]) / centered.var()) < 5 / np.sqrt(n)
    for m1, m2 in zip(drawn, drawn[1:]):
        assert abs(np.corrcoef(m1, m2)[0, 1]) < 5 / np.sqrt(n)
