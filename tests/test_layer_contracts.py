"""Keras' own layer checks on every selu_zoo layer, plus masking and noise_shape contracts.

`keras.src.testing.TestCase.run_layer_test` is what Keras runs on its own layers: the build
state after construction (stateless layers are built at once, a subclass overriding ``build``
is not), get_config and serialization round trips, weight and seed-generator counts, the
symbolic and eager output shapes, a compiled training step, and mixed precision (output dtype
matches ``compute_output_spec``, variables stay float32). It is semi-private Keras API, used
here in tests only.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src import testing

from selu_zoo.layers import (SELU, AlphaDropout, Clip, FeatureAlphaDropout, MirrorPadding2D,
                             SELUDense, SELURNNCell, VAESampling)

# run_layer_test's training step fits from a generator with shuffle=True, and fits layers
# without weights too; Keras warns about both on its own layers as well.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning"),
    pytest.mark.filterwarnings("ignore:The model does not have any trainable weights:UserWarning"),
]


def selu_rnn(units=4, dtype=None, **kwargs):
    """``keras.layers.RNN(SELURNNCell(units))``: how a cell meets Keras' layer contract."""
    return keras.layers.RNN(SELURNNCell(units, dtype=dtype), dtype=dtype, **kwargs)


class LayerContractTest(testing.TestCase):

    def test_selu(self):
        self.run_layer_test(
            SELU, init_kwargs={}, input_shape=(2, 3, 4), expected_output_shape=(2, 3, 4),
            expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
            expected_num_seed_generators=0, expected_num_losses=0, supports_masking=True,
            assert_built_after_instantiation=True)

    def test_alpha_dropout(self):
        for kwargs in ({"rate": 0.2}, {"rate": 0.1, "noise_shape": (None, 1, None), "seed": 3,
                                       "mean": 0.1, "variance": 1.2}):
            self.run_layer_test(
                AlphaDropout, init_kwargs=kwargs, input_shape=(2, 3, 4),
                call_kwargs={"training": True}, expected_output_shape=(2, 3, 4),
                expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                expected_num_seed_generators=1, expected_num_losses=0, supports_masking=True,
                assert_built_after_instantiation=True)

    def test_alpha_dropout_at_rate_zero_has_no_seed_generator(self):
        self.run_layer_test(
            AlphaDropout, init_kwargs={"rate": 0.0}, input_shape=(2, 3),
            call_kwargs={"training": True}, expected_output_shape=(2, 3),
            expected_num_seed_generators=0, supports_masking=True,
            assert_built_after_instantiation=True)

    def test_feature_alpha_dropout(self):
        for data_format in ("channels_last", "channels_first"):
            self.run_layer_test(
                FeatureAlphaDropout, init_kwargs={"rate": 0.2, "seed": 1,
                                                  "data_format": data_format},
                input_shape=(2, 3, 4, 5), call_kwargs={"training": True},
                expected_output_shape=(2, 3, 4, 5), expected_num_trainable_weights=0,
                expected_num_seed_generators=1, expected_num_losses=0, supports_masking=True,
                assert_built_after_instantiation=True)

    def test_selu_dense(self):
        self.run_layer_test(
            SELUDense, init_kwargs={"units": 4}, input_shape=(2, 3),
            expected_output_shape=(2, 4), expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=0, expected_num_seed_generators=0,
            expected_num_losses=0, supports_masking=True)
        self.run_layer_test(
            SELUDense, init_kwargs={"units": 5, "dropout_rate": 0.1, "seed": 2,
                                    "use_bias": False, "kernel_regularizer": "l2"},
            input_shape=(2, 6, 3), call_kwargs={"training": True},
            expected_output_shape=(2, 6, 5), expected_num_trainable_weights=1,
            expected_num_seed_generators=1, expected_num_losses=1, supports_masking=True)

    def test_selu_rnn_cell_in_keras_rnn(self):
        for kwargs in ({"units": 4}, {"units": 3, "return_sequences": True}):
            expected = (2, 5, kwargs["units"]) if "return_sequences" in kwargs else (2, 4)
            self.run_layer_test(
                selu_rnn, init_kwargs=kwargs, input_shape=(2, 5, 6),
                expected_output_shape=expected, expected_num_trainable_weights=3,
                expected_num_non_trainable_weights=0, expected_num_seed_generators=0,
                supports_masking=True)

    def test_selu_rnn_cell_serializes(self):
        cell = SELURNNCell(4, use_bias=False, recurrent_regularizer="l2")
        self.run_class_serialization_test(cell)

    def test_mirror_padding(self):
        self.run_layer_test(
            MirrorPadding2D, init_kwargs={"padding": ((1, 2), (0, 1)), "mode": "symmetric"},
            input_shape=(2, 4, 5, 3), expected_output_shape=(2, 7, 6, 3),
            expected_num_trainable_weights=0, expected_num_seed_generators=0,
            supports_masking=False, assert_built_after_instantiation=True)

    def test_clip(self):
        self.run_layer_test(
            Clip, init_kwargs={"min_value": -1.0, "max_value": 2.0}, input_shape=(2, 3),
            expected_output_shape=(2, 3), expected_num_trainable_weights=0,
            expected_num_seed_generators=0, supports_masking=True,
            assert_built_after_instantiation=True)

    def test_vae_sampling(self):
        for training in (True, False):
            self.run_layer_test(
                VAESampling, init_kwargs={"seed": 1, "kl_weight": 0.5},
                input_shape=((2, 3), (2, 3)), input_dtype=("float32", "float32"),
                call_kwargs={"training": training}, expected_output_shape=(2, 3),
                expected_num_trainable_weights=0, expected_num_seed_generators=1,
                expected_num_losses=1, supports_masking=False,
                assert_built_after_instantiation=True)


# --- masking -------------------------------------------------------------------------------


def _masked_sequences():
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    x[0, 3:] = 0.0  # padded steps
    x[2, 1:] = 0.0
    return x


@pytest.mark.parametrize("make", [lambda: SELUDense(6), lambda: SELU(), lambda: Clip(-1, 1),
                                  lambda: AlphaDropout(0.2, seed=1),
                                  lambda: FeatureAlphaDropout(0.2, seed=1)])
def test_masks_pass_through_as_in_keras_dense(make):
    x = _masked_sequences()
    masked = keras.layers.Masking(0.0)(x)
    expected = keras.layers.Dense(6)(masked)._keras_mask
    assert getattr(make()(masked), "_keras_mask", None) is not None
    np.testing.assert_array_equal(make()(masked)._keras_mask.numpy(), expected.numpy())


def test_selu_dense_mask_reaches_a_following_rnn():
    """Padded steps are skipped by an RNN after SELUDense, as after Dense."""
    inputs = keras.Input((5, 4))
    h = SELUDense(6)(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.SimpleRNN(3, return_sequences=True)(h))
    x = _masked_sequences()
    y = model(x).numpy()
    # a masked step repeats the previous output (Keras' RNN masking semantics)
    np.testing.assert_array_equal(y[0, 3], y[0, 2])
    np.testing.assert_array_equal(y[2, 4], y[2, 0])
    assert not np.array_equal(y[1, 4], y[1, 3])


# --- noise_shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("noise_shape", [(20, 1.5, 10), (20, -1, 10), (20, 0, 10), "Invalid",
                                         (None, True), 3])
def test_alpha_dropout_validates_noise_shape_at_construction(noise_shape):
    with pytest.raises(ValueError, match="noise_shape must be None or a sequence of positive"):
        AlphaDropout(0.5, noise_shape=noise_shape)


def test_alpha_dropout_checks_noise_shape_rank_and_dimensions_when_called():
    layer = AlphaDropout(0.5, noise_shape=(None, 1, 10))
    assert layer.get_config()["noise_shape"] == (None, 1, 10)
    layer(tf.ones([2, 5, 10]), training=True)
    with pytest.raises(ValueError, match="expected ndim=3"):
        layer(tf.ones([2, 10]), training=True)
    with pytest.raises(ValueError, match="expected axis 2 of input shape to have value 10"):
        layer(tf.ones([2, 5, 7]))  # checked in inference too: the model would fail training
    with pytest.raises(ValueError, match="expected ndim=3"):
        keras.Sequential([keras.Input((10,)), AlphaDropout(0.5, noise_shape=(None, 1, 10))])


def test_alpha_dropout_noise_shape_round_trips_through_json():
    layer = AlphaDropout(0.5, noise_shape=[np.int64(4), None, 1])
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert restored.noise_shape == (4, None, 1)
    assert isinstance(restored.noise_shape[0], int)
