"""selu_zoo.callbacks: activation statistics and the self-normalization monitor."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging

from selu_zoo.callbacks import SelfNormalizationMonitor, activation_statistics
from selu_zoo.layers import SELU, AlphaDropout, SELUDense


def _mlp(depth=8, width=128, initializer="lecun_normal"):
    inputs = keras.Input((64,), name="features")
    h = inputs
    for _ in range(depth):
        h = SELUDense(width, dropout_rate=0.05, kernel_initializer=initializer, seed=1)(h)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))


def _nested():
    inner_in = keras.Input((16,), name="z")
    inner = keras.Model(inner_in, SELU()(keras.layers.Dense(16)(inner_in)), name="decoder")
    inputs = keras.Input((16,), name="features")
    h = SELUDense(16)(inputs)
    return keras.Model(inputs, inner(AlphaDropout(0.1)(h)))


def test_statistics_match_a_manual_probe_and_layers_are_restored():
    keras.utils.set_random_seed(0)
    model = _mlp()
    x = np.random.default_rng(0).normal(size=(512, 64)).astype("float32")
    stats = activation_statistics(model, x)
    assert len(stats) == 8
    second = model.layers[2]
    manual = keras.Model(model.input, second.output)(x).numpy().astype(np.float64)
    np.testing.assert_allclose(stats[second.name], (manual.mean(), manual.var()), rtol=1e-5,
                               atol=1e-7)
    assert "call" not in vars(second)  # the wrapper is gone
    for mean, variance in stats.values():
        assert abs(mean) < 0.1 and abs(variance - 1) < 0.15


def test_nested_models_are_walked():
    stats = activation_statistics(_nested(), np.ones((4, 16), "float32"))
    assert len(stats) == 2
    assert any(name.startswith("decoder/") for name in stats)


def test_monitor_logs_tensorboard_scalars_and_warns_on_drift(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    model = _mlp(depth=4, initializer=keras.initializers.RandomNormal(stddev=1.0))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    x = np.random.default_rng(1).normal(size=(64, 64)).astype("float32")
    y = np.zeros(64, "int32")
    warnings = []
    monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
    monitor = SelfNormalizationMonitor(x[:32], log_dir=tmp_path)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    assert len(monitor.history) == 3  # before training and after each epoch
    assert warnings and "left the self-normalizing regime" in warnings[0]
    event_files = list(tmp_path.glob("events.out.tfevents.*"))
    assert event_files
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(str(event_files[0]))
            for v in e.summary.value}
    assert any(tag.startswith("self_normalization/") and tag.endswith("/variance")
               for tag in tags)


def test_monitor_is_quiet_for_a_self_normalizing_network(monkeypatch):
    keras.utils.set_random_seed(0)
    model = _mlp()
    warnings = []
    monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
    monitor = SelfNormalizationMonitor(np.random.default_rng(2).normal(size=(256, 64)))
    monitor.set_model(model)
    monitor.on_train_begin()
    assert warnings == []


def _tiny_classifier():
    inputs = keras.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(SELUDense(8)(inputs)))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    return model


def test_best_checkpoint_saves_only_improvements_atomically(tmp_path):
    from selu_zoo.callbacks import BestModelCheckpoint

    model = _tiny_classifier()
    checkpoint = BestModelCheckpoint(tmp_path / "ckpt" / "best.keras")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    first = (tmp_path / "ckpt" / "best.keras").stat().st_mtime_ns
    checkpoint.on_epoch_end(1, {"val_loss": 0.7})  # worse: untouched
    assert (tmp_path / "ckpt" / "best.keras").stat().st_mtime_ns == first
    checkpoint.on_epoch_end(2, {"val_loss": float("nan")})  # never saves NaN
    assert checkpoint.best == 0.5 and checkpoint.best_epoch == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "best.keras", "best.keras.json"]  # no temporary files left
    keras.models.load_model(tmp_path / "ckpt" / "best.keras")

    resumed = BestModelCheckpoint(tmp_path / "ckpt" / "best.keras")  # a resumed run
    resumed.set_model(model)
    resumed.on_train_begin()
    assert resumed.best == 0.5
    resumed.on_epoch_end(3, {"val_loss": 0.6})
    assert (tmp_path / "ckpt" / "best.keras").stat().st_mtime_ns == first


@pytest.mark.parametrize("kwargs", [{"filepath": "best.h5"}, {"filepath": "b.keras", "mode": "up"}])
def test_best_checkpoint_rejects_bad_arguments(kwargs):
    from selu_zoo.callbacks import BestModelCheckpoint

    with pytest.raises(ValueError):
        BestModelCheckpoint(**kwargs)


def test_image_grid_tiles_row_major():
    from selu_zoo.callbacks import image_grid

    images = np.stack([np.full((2, 3), i / 4) for i in range(5)])
    grid = image_grid(images, columns=3)
    assert grid.shape == (4, 9, 1) and grid.dtype == np.uint8
    assert grid[0, 3, 0] == round(255 / 4) and grid[2, 0, 0] == round(3 * 255 / 4)
    assert grid[2, 6, 0] == 0  # padding


def test_vae_images_shapes_and_range():
    from configs import snn_vae
    from models import build_model
    from selu_zoo.callbacks import vae_images
    from selu_zoo.datasets import DatasetInfo

    info = DatasetInfo("digits-like", "classification", 10, (64,), {"train": 1},
                       np.full(64, 0.3), np.full(64, 0.1), None)
    model = build_model("snn_vae", snn_vae.get_config(), info)
    x = np.random.default_rng(0).uniform(size=(5, 64)).astype("float32")
    noise = np.random.default_rng(1).normal(size=(3, 8)).astype("float32")
    originals, reconstructions, samples = vae_images(model, x, noise, (8, 8))
    assert originals.shape == reconstructions.shape == (5, 8, 8) and samples.shape == (3, 8, 8)
    np.testing.assert_array_equal(originals, x.reshape(5, 8, 8))
    for images in (reconstructions, samples):  # Bernoulli means
        assert images.min() >= 0 and images.max() <= 1
    decoded = model.get_layer("decoder")(noise)
    np.testing.assert_allclose(samples.reshape(3, 64), tf.sigmoid(decoded).numpy(), rtol=1e-6)
