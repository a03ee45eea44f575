"""selu_zoo.callbacks: statistics, the monitor's verdict, the epoch line, best model, history."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging

from selu_zoo import callbacks, tasks, theory
from selu_zoo.layers import SELU, AlphaDropout, SELUDense


def _mlp(depth=8, width=128, initializer="lecun_normal"):
    inputs = keras.Input((64,), name="features")
    h = inputs
    for _ in range(depth):
        h = SELUDense(width, dropout_rate=0.05, kernel_initializer=initializer, seed=1)(h)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))


def _classifier(depth=4, initializer="lecun_normal"):
    inputs = keras.Input((64,), name="features")
    h = inputs
    for _ in range(depth):
        h = SELUDense(128, kernel_initializer=initializer, seed=1)(h)
    model = tasks.Classifier(keras.Model(inputs, h), 3)
    model.compile(optimizer="sgd")
    return model


def test_statistics_match_a_manual_probe():
    keras.utils.set_random_seed(0)
    model = _mlp()
    x = np.random.default_rng(0).normal(size=(512, 64)).astype("float32")
    stats = callbacks.activation_statistics(model, x)
    assert len(stats) == 8
    second = model.layers[2]
    manual = keras.Model(model.inputs[0], second.output)(x).numpy().astype(np.float64)
    np.testing.assert_allclose(stats[second.name], (manual.mean(), manual.var()), rtol=1e-5,
                               atol=1e-7)
    for mean, variance in stats.values():
        assert theory.in_theorem1_domain(mean, variance), (mean, variance)


def test_a_select_predicate_picks_the_layers():
    inputs = keras.Input((16,), name="features")
    h = SELU(name="first")(keras.layers.Dense(16)(inputs))
    model = keras.Model(inputs, AlphaDropout(0.1, name="drop")(h))
    stats = callbacks.activation_statistics(model, np.ones((4, 16), "float32"),
                                            select=lambda layer: layer.name == "drop")
    assert list(stats) == ["drop"]


def test_theorem1_domain_holds_what_the_paper_says():
    """The moment map sends the domain into itself and contracts there (dense grid)."""
    worst = 0.0
    for omega in (-0.1, 0.0, 0.1):
        for tau in (0.95, 1.0, 1.1):
            for mean in np.linspace(*theory.THEOREM1_MEAN, 9):
                for variance in np.linspace(*theory.THEOREM1_VARIANCE, 15):
                    assert theory.in_theorem1_domain(*theory.moment_map(mean, variance, omega,
                                                                        tau))
                    worst = max(worst, theory.jacobian_spectral_norm(mean, variance, omega, tau))
    assert worst < 1.0
    assert not theory.in_theorem1_domain(0.0, 2.2) and not theory.in_theorem1_domain(
        float("nan"), 1.0)


def test_monitor_writes_tensorboard_scalars_and_names_the_farthest_layer(tmp_path):
    keras.utils.set_random_seed(0)
    model = _classifier(initializer=keras.initializers.RandomNormal(stddev=1.0))
    x = np.random.default_rng(1).normal(size=(64, 64)).astype("float32")
    monitor = callbacks.SelfNormalizationMonitor(x[:32], log_dir=tmp_path)
    model.fit(x, np.zeros(64, "int32"), epochs=2, verbose=0, callbacks=[monitor])
    assert len(monitor.history) == 3  # before training and after each epoch
    verdict = monitor.verdict()
    assert verdict.startswith("0/4 SELU layers in Theorem 1's domain; farthest out ")
    last = monitor.history[-1]
    farthest = max(last, key=lambda name: last[name][1])
    assert farthest in verdict
    event_files = list(tmp_path.glob("events.out.tfevents.*"))
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(str(event_files[0]))
            for v in e.summary.value}
    assert {f"self_normalization/{name}/variance" for name in last} <= tags


def test_monitor_verdict_for_a_self_normalizing_network():
    keras.utils.set_random_seed(0)
    monitor = callbacks.SelfNormalizationMonitor(
        np.random.default_rng(2).normal(size=(256, 64)).astype("float32"))
    monitor.set_model(_classifier())
    monitor.on_train_begin()
    assert monitor.verdict() == "self-normalized: 4/4 SELU layers in Theorem 1's domain"


def test_epoch_logger_writes_one_line_per_epoch(monkeypatch):
    lines = []
    monkeypatch.setattr(logging, "info", lambda msg, *args: lines.append(msg % args))
    keras.utils.set_random_seed(0)
    model = _classifier(depth=2)
    x = np.random.default_rng(3).normal(size=(64, 64)).astype("float32")
    monitor = callbacks.SelfNormalizationMonitor(x)
    logger = callbacks.EpochLogger(3, monitor)
    model.fit(x, np.zeros(64, "int32"), epochs=3, verbose=0, callbacks=[monitor, logger])
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3 and logger.epoch == 3
    assert epochs[0].startswith("epoch 1/3: accuracy ") and "loss " in epochs[0]
    assert all("SELU layers in Theorem 1's domain" in line for line in epochs)
    assert [line for line in lines if line.startswith("before training: ")]


def _tiny():
    inputs = keras.Input((4,), name="features")
    model = tasks.Classifier(keras.Model(inputs, SELUDense(8)(inputs)), 2)
    model.compile(optimizer="sgd")
    return model


def test_best_checkpoint_saves_only_improvements_atomically(tmp_path):
    path = tmp_path / "ckpt" / "best.keras"
    model = _tiny()
    checkpoint = callbacks.BestModelCheckpoint(path, run_id="run-a")
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    first = path.stat().st_mtime_ns
    checkpoint.on_epoch_end(1, {"val_loss": 0.7})  # worse: untouched
    assert path.stat().st_mtime_ns == first
    checkpoint.on_epoch_end(2, {"val_loss": float("nan")})  # never saves NaN
    assert checkpoint.best == 0.5 and checkpoint.best_epoch == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.keras", "best.keras.json"]
    assert isinstance(keras.models.load_model(path), tasks.Classifier)

    resumed = callbacks.BestModelCheckpoint(path, run_id="run-a")  # the same run, resumed
    resumed.set_model(model)
    resumed.on_train_begin()
    assert resumed.best == 0.5
    resumed.on_epoch_end(3, {"val_loss": 0.6})
    assert path.stat().st_mtime_ns == first

    other = callbacks.BestModelCheckpoint(path, run_id="run-b")  # another run: forgets
    other.set_model(model)
    other.on_train_begin()
    assert other.best is None
    other.on_epoch_end(0, {"val_loss": 0.9})
    assert path.stat().st_mtime_ns != first
    assert json.loads((tmp_path / "ckpt" / "best.keras.json").read_text())["run_id"] == "run-b"


def test_a_failed_save_keeps_the_previous_best(tmp_path, monkeypatch):
    path = tmp_path / "best.keras"
    model = _tiny()
    checkpoint = callbacks.BestModelCheckpoint(path, run_id="r")
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    with pytest.raises(OSError, match="no space left on device"):
        checkpoint.on_epoch_end(1, {"val_loss": 0.1})
    assert path.read_bytes() == before and checkpoint.best == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "best.keras.json"]


def test_corrupt_best_record_names_the_file(tmp_path):
    path = tmp_path / "best.keras"
    checkpoint = callbacks.BestModelCheckpoint(path, run_id="r")
    checkpoint.set_model(_tiny())
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    (tmp_path / "best.keras.json").write_text("{garbage")
    with pytest.raises(OSError, match="best.keras.json is corrupt .*delete it"):
        callbacks.BestModelCheckpoint(path, run_id="r").on_train_begin()


def test_a_truncated_best_model_is_found_before_training(tmp_path):
    path = tmp_path / "best.keras"
    checkpoint = callbacks.BestModelCheckpoint(path, run_id="r")
    checkpoint.set_model(_tiny())
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(OSError, match="best.keras is corrupt .*--restart"):
        callbacks.BestModelCheckpoint(path, run_id="r").on_train_begin()


@pytest.mark.parametrize("kwargs", [{"filepath": "best.h5"}, {"filepath": "b.keras", "mode": "up"}])
def test_best_checkpoint_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        callbacks.BestModelCheckpoint(run_id="r", **kwargs)


def test_history_file_keeps_the_epochs_of_a_resumed_run(tmp_path):
    path = tmp_path / "history.json"
    first = callbacks.HistoryFile(path, "run")
    for epoch in range(3):
        first.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 2.0})
    resumed = callbacks.HistoryFile(path, "run", initial_epoch=2)  # epoch 3 is redone
    resumed.on_epoch_end(2, {"loss": 0.25, "val_loss": 1.5})
    assert resumed.history == {"loss": [1.0, 0.5, 0.25], "val_loss": [2.0, 2.0, 1.5]}
    assert callbacks.HistoryFile(path, "another run", initial_epoch=2).history == {}


def test_a_deferred_history_file_is_written_when_asked(tmp_path):
    path = tmp_path / "history.json"
    history = callbacks.HistoryFile(path, "run", deferred=True)
    history.on_epoch_end(0, {"loss": 1.0})
    assert not path.exists()
    history.write()
    history.on_epoch_end(1, {"loss": 0.5})
    assert json.loads(path.read_text())["epochs"] == [{"epoch": 1, "loss": 1.0}]
    history.write()
    resumed = callbacks.HistoryFile(path, "run", initial_epoch=2)
    assert resumed.history == {"loss": [1.0, 0.5]}


def test_task_pictures_go_to_tensorboard(tmp_path):
    inputs = keras.Input((16,), name="features")
    h = SELUDense(8)(inputs)
    encoder = keras.Model(inputs, [keras.layers.Dense(2)(h), keras.layers.Dense(2)(h)])
    z = keras.Input((2,), name="z")
    model = tasks.VAE(encoder, keras.Model(z, keras.layers.Dense(16)(z)))
    writer = callbacks.TaskPictures(np.random.default_rng(0).random((8, 16), "float32"),
                                    tmp_path)
    writer.set_model(model)
    writer.on_epoch_end(0)
    writer.on_train_end()
    events = list(tmp_path.glob("events.out.tfevents.*"))
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(str(events[0]))
            for v in e.summary.value}
    assert tags == {"vae_samples"}


def test_deferred_best_model_is_written_from_its_epoch(tmp_path):
    """Deferred, the best weights wait in memory; `write` saves them, not the current ones."""
    path = tmp_path / "best.keras"
    model = _tiny()
    checkpoint = callbacks.BestModelCheckpoint(path, run_id="r", deferred=True)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_loss": 0.5})
    best_weights = model.get_weights()
    assert not path.exists()
    model.set_weights([w + 1 for w in best_weights])
    checkpoint.on_epoch_end(1, {"val_loss": 0.7})  # worse
    checkpoint.write()
    for saved, best in zip(keras.models.load_model(path).get_weights(), best_weights):
        np.testing.assert_array_equal(saved, best)
    assert model.get_weights()[0][0, 0] == best_weights[0][0, 0] + 1  # the model is untouched
    assert json.loads((tmp_path / "best.keras.json").read_text())["epoch"] == 1


def test_timed_callbacks_time_each_part_and_defer_within_budget():
    calls = []
    cheap = callbacks.EpochEnd("cheap", calls.append)
    costly = callbacks.EpochEnd("costly", lambda epoch: calls.append(f"costly {epoch}"))
    model = _tiny()
    timed = callbacks.TimedCallbacks([cheap, costly], model, budgets={costly: 0.0})
    x, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
    model.fit(x, y, validation_data=(x, y), epochs=3, callbacks=timed, verbose=0)
    assert calls == [0, "costly 0", 1, 2]  # the budgeted one runs in the first epoch only
    parts = ["History", "cheap", "epoch", "total", "train", "validation"]  # Keras' History too
    assert [sorted(e) for e in timed.seconds] == [sorted(parts + ["costly"]), parts, parts]
    assert all(e["total"] >= e["train"] + e["validation"] > 0 for e in timed.seconds)
