"""selu_zoo.losses: math against NumPy, extremes, reductions and serialization."""

import math

import keras
import numpy as np
import pytest

from selu_zoo.losses import BernoulliReconstruction, GaussianReconstruction


def _bernoulli_reference(x, logits):
    """-sum log p(x | logits) per example, in float64 with log-sum-exp."""
    x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    log_p = -np.logaddexp(0.0, -logits)
    log_not_p = -np.logaddexp(0.0, logits)
    return -np.sum((x * log_p + (1 - x) * log_not_p).reshape(len(x), -1), axis=1)


def _data(shape=(16, 4, 5), seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape).astype("float32"), (3 * rng.standard_normal(shape)).astype("float32")


@pytest.mark.parametrize("shape", [(16, 20), (16, 4, 5)])
def test_bernoulli_from_logits_matches_reference(shape):
    x, logits = _data(shape)
    per_example = BernoulliReconstruction(reduction=None)(x, logits)
    np.testing.assert_allclose(per_example, _bernoulli_reference(x, logits), rtol=1e-5)
    mean = BernoulliReconstruction()(x, logits)
    np.testing.assert_allclose(mean, _bernoulli_reference(x, logits).mean(), rtol=1e-5)


def test_bernoulli_from_probabilities_matches_reference():
    x, logits = _data()
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    loss = BernoulliReconstruction(from_logits=False, reduction=None)(
        x, probabilities.astype("float32"))
    np.testing.assert_allclose(loss, _bernoulli_reference(x, logits), rtol=1e-3)


@pytest.mark.parametrize("logit", [-1e30, -100.0, 100.0, 1e30])
@pytest.mark.parametrize("target", [0.0, 1.0, 1e6])
def test_bernoulli_finite_for_extreme_logits_and_targets(logit, target):
    loss = BernoulliReconstruction()(np.full((2, 8), target, "float32"),
                                     np.full((2, 8), logit, "float32"))
    assert math.isfinite(float(loss))


def test_bernoulli_gradient_is_sigmoid_minus_target():
    import tensorflow as tf

    x, logits = _data((4, 6))
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(BernoulliReconstruction(reduction=None)(x, logits))
    np.testing.assert_allclose(tape.gradient(loss, logits), tf.sigmoid(logits) - x, atol=1e-6)


@pytest.mark.parametrize("variance", [0.1, 1.0, 4.0])
def test_gaussian_matches_reference(variance):
    x, mean = _data()
    expected = np.sum((0.5 * (x.astype(np.float64) - mean) ** 2 / variance
                       + 0.5 * np.log(2 * np.pi * variance)).reshape(len(x), -1), axis=1)
    loss = GaussianReconstruction(variance=variance, reduction=None)(x, mean)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("variance", [0.0, -1.0, float("nan"), float("inf")])
def test_gaussian_rejects_bad_variance(variance):
    with pytest.raises(ValueError, match="variance"):
        GaussianReconstruction(variance=variance)


@pytest.mark.parametrize("loss", [BernoulliReconstruction(from_logits=False, reduction="sum"),
                                  GaussianReconstruction(variance=0.25, name="nll")])
def test_get_config_round_trip(loss):
    config = loss.get_config()
    assert type(loss).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == config
    x, y = _data()
    np.testing.assert_allclose(restored(x, np.clip(y, 0.01, 0.99)), loss(x, np.clip(y, 0.01, 0.99)))
