"""training.train_and_evaluate in-process, Flax style: each task, reused workdirs, ram://."""

import importlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import training
from selu_zoo import callbacks, runs, tasks


def config_of(name, **overrides):
    """A small, fast config: the model's default with tiny widths, no XLA, few epochs."""
    config = importlib.import_module(f"configs.{name}").get_config()
    small = {"epochs": 2, "jit_compile": False, "batch_size": 32}
    small.update({"snn": {"depth": 1, "width": 16}, "snn_vae": {"depth": 1, "width": 16}}
                 .get(name, {}))
    for key, value in {**small, **overrides}.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_classifier_trains_evaluates_and_exports(tmp_path, data_dir):
    config = config_of("snn", dataset="iris")
    result = training.train_and_evaluate(
        config, str(tmp_path / "work"), data_dir=data_dir,
        export_options=training.ExportOptions(str(tmp_path / "exports"), "iris_snn",
                                              serving_form="exact"))
    metrics, artifacts = result["metrics"], result["artifacts"]
    assert metrics["kind"] == "classifier" and 0 <= metrics["test"]["accuracy"] <= 1
    assert list(metrics["label_names"]) == ["setosa", "versicolor", "virginica"]
    assert metrics["exported_version"] == 1 and metrics["resumed_from_epoch"] == 0
    assert len(metrics["history"]["loss"]) == 2 and metrics["wall_time_s"] > 0
    saved = json.loads((tmp_path / "work" / "metrics.json").read_text())
    assert saved["config"]["dataset"] == "iris" and saved["run_id"]
    assert saved["artifacts"]["saved_model"] == str(tmp_path / "exports" / "iris_snn" / "1")
    for name in ("best_checkpoint", "saved_model", "keras", "tflite_int8", "report",
                 "warmup_requests", "models_config", "metrics"):
        assert os.path.exists(artifacts[name]), name
    report = json.loads(open(artifacts["report"]).read())
    assert report["serving_form"] == "exact" and report["label_names"] == list(
        metrics["label_names"])
    model = keras.models.load_model(artifacts["keras"])
    assert isinstance(model, tasks.Classifier) and model.label_names == (
        "setosa", "versicolor", "virginica")


def test_regressor_on_a_csv_file(tmp_path, data_dir):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = 100.0 + 20.0 * x[:, 0] - 5.0 * x[:, 1]
    path = tmp_path / "target.csv"
    np.savetxt(path, np.c_[x, y], delimiter=",", header="a,b,c,target", comments="",
               fmt="%.6f")
    config = config_of("snn", dataset=f"csv:{path}", label_column="target", epochs=3,
                       learning_rate=3e-3)
    result = training.train_and_evaluate(config, str(tmp_path / "work"), data_dir=data_dir)
    metrics = result["metrics"]
    assert metrics["kind"] == "regressor" and set(metrics["test"]) == {"loss", "mae"}
    model = keras.models.load_model(result["artifacts"]["best_checkpoint"])
    info = training.open_data(config, data_dir).info  # the train split's target statistics
    assert model.target_mean == pytest.approx(info.label_mean)
    assert model.target_std == pytest.approx(np.sqrt(info.label_variance))
    assert abs(info.label_mean - 100.0) < 5 and abs(np.sqrt(info.label_variance) - 20.6) < 3
    assert metrics["test"]["mae"] < np.std(y)  # better than predicting the mean


def test_vae_reports_the_elbo_and_draws_its_picture(tmp_path, data_dir):
    result = training.train_and_evaluate(config_of("snn_vae", epochs=1),
                                         str(tmp_path / "work"), data_dir=data_dir)
    metrics = result["metrics"]
    assert metrics["kind"] == "vae" and metrics["test"]["elbo"] < 0
    assert metrics["test"]["elbo"] < -metrics["test"]["loss"] + 5  # ELBO <= about -loss
    image = tf.io.decode_png(tf.io.read_file(result["artifacts"]["vae_samples"])).numpy()
    assert image.shape[1] >= 256 and image.shape[0] >= 3 * 64


def test_a_reused_workdir_resumes_its_run_or_refuses_another(tmp_path, data_dir):
    workdir = str(tmp_path / "work")
    first = training.train_and_evaluate(config_of("snn", dataset="iris"), workdir,
                                        data_dir=data_dir)["metrics"]
    # The same config with more epochs goes on from the last epoch.
    longer = training.train_and_evaluate(config_of("snn", dataset="iris", epochs=3), workdir,
                                         data_dir=data_dir)["metrics"]
    assert longer["run_id"] == first["run_id"] and longer["resumed_from_epoch"] == 2
    assert len(longer["history"]["loss"]) == 3
    assert longer["history"]["loss"][:2] == first["history"]["loss"]
    best = tmp_path / "work" / "checkpoints" / "best.keras"
    stamp = best.stat().st_mtime_ns
    # Another config is refused before training: nothing of the run changes.
    with pytest.raises(runs.RunMismatchError, match="config.width: 16 -> 8"):
        training.train_and_evaluate(config_of("snn", dataset="iris", width=8), workdir,
                                    data_dir=data_dir)
    assert best.stat().st_mtime_ns == stamp
    # --restart starts a new run whose best model, logs and metrics are its own.
    restarted = training.train_and_evaluate(config_of("snn", dataset="iris", width=8),
                                            workdir, data_dir=data_dir, restart=True)
    metrics = restarted["metrics"]
    assert metrics["run_id"] != first["run_id"] and metrics["resumed_from_epoch"] == 0
    assert len(metrics["history"]["loss"]) == 2
    model = keras.models.load_model(best)
    assert model.backbone.get_layer("selu_dense_0").units == 8


def test_an_interrupt_resumes_where_it_stopped(tmp_path, data_dir, monkeypatch):
    original = callbacks.EpochLogger.on_epoch_end

    def interrupt_after_two(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.EpochLogger, "on_epoch_end", interrupt_after_two)
    workdir = str(tmp_path / "work")
    config = config_of("snn", dataset="iris", epochs=4)
    with pytest.raises(training.Interrupted, match="interrupted at epoch 2; run the same "
                                                   "command to resume after epoch") as error:
        training.train_and_evaluate(config, workdir, data_dir=data_dir)
    # Checkpoints come within 4% of the training time: the first epoch, then as it allows.
    checkpointed = int(str(error.value).split("after epoch ")[1].split(",")[0])
    monkeypatch.setattr(callbacks.EpochLogger, "on_epoch_end", original)
    metrics = training.train_and_evaluate(config, workdir, data_dir=data_dir)["metrics"]
    assert metrics["resumed_from_epoch"] == checkpointed >= 1
    assert len(metrics["history"]["loss"]) == 4


def test_divergence_exports_nothing(tmp_path, data_dir):
    config = config_of("snn", dataset="iris", optimizer="sgd", learning_rate=1e30)
    with pytest.raises(training.Diverged, match="lower --config.learning_rate"):
        training.train_and_evaluate(
            config, str(tmp_path / "work"), data_dir=data_dir,
            export_options=training.ExportOptions(str(tmp_path / "exports"), "snn"))
    assert not (tmp_path / "exports").exists()


def test_a_run_on_ram_filesystems(data_dir):
    """Workdir and export_dir on ram:// (TF's in-memory filesystem) exercise gfile paths."""
    result = training.train_and_evaluate(
        config_of("snn", dataset="iris"), "ram://training_test/work", data_dir=data_dir,
        export_options=training.ExportOptions("ram://training_test/exports", "snn"))
    artifacts = result["artifacts"]
    assert artifacts["saved_model"] == "ram://training_test/exports/snn/1"
    for name in ("metrics", "best_checkpoint", "keras", "tflite_float32", "models_config"):
        assert tf.io.gfile.exists(artifacts[name]), name
    loaded = tf.saved_model.load(artifacts["saved_model"])
    x = np.zeros((2, 4), np.float32)
    assert loaded.signatures["serving_default"](features=tf.constant(x))["logits"].shape == (2, 3)


def test_the_same_config_gives_the_same_run_whether_the_data_was_prepared_or_not(tmp_path):
    config = config_of("snn", dataset="iris", epochs=1)
    fresh, again = (training.train_and_evaluate(config, str(tmp_path / name),
                                                data_dir=str(tmp_path / "tfds"))["metrics"]
                    for name in ("first", "second"))  # the first run prepares iris
    assert fresh["self_normalization"] == again["self_normalization"]
    assert fresh["test"] == again["test"] and fresh["history"] == again["history"]


def _checkpoint(workdir, epoch):
    """Every variable of the resume checkpoint of ``epoch`` as NumPy arrays."""
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints", f"ckpt-{epoch}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "_CHECKPOINTABLE_OBJECT_GRAPH" not in name}


@pytest.mark.parametrize("model, loop", [("snn", "fit"), ("snn_vae", "fit"), ("snn", "custom")])
def test_a_resumed_run_ends_bit_identical_to_the_uninterrupted_one(tmp_path, data_dir, model,
                                                                  loop):
    """The default config (alpha dropout on, XLA): 2 epochs, then resumed to 4, against 4 at
    once. Weights, optimizer slots, step counters and dropout seed states are equal bit for
    bit, so the data order, the masks and the optimizer all came back."""
    config = importlib.import_module(f"configs.{model}").get_config()
    config.epochs = 4
    whole = str(tmp_path / "whole")
    training.train_and_evaluate(config, whole, data_dir=data_dir, loop=loop)
    parts = str(tmp_path / "parts")
    config.epochs = 2
    training.train_and_evaluate(config, parts, data_dir=data_dir, loop=loop)
    config.epochs = 4
    resumed = training.train_and_evaluate(config, parts, data_dir=data_dir, loop=loop)["metrics"]
    assert resumed["resumed_from_epoch"] == 2
    expected, got = _checkpoint(whole, 4), _checkpoint(parts, 4)
    # model_variables: every variable of the model, the dropout layers' seed states included
    assert sorted(got) == sorted(expected) and any(n.startswith("model_variables/") for n in got)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    history = json.loads(open(os.path.join(whole, "metrics.json")).read())["history"]
    assert resumed["history"]["loss"] == history["loss"]


def test_rerunning_a_finished_run_trains_and_publishes_nothing(tmp_path, data_dir):
    config = config_of("snn", dataset="iris")
    options = training.ExportOptions(str(tmp_path / "exports"), "iris_snn", formats=())
    first = training.train_and_evaluate(config, str(tmp_path / "work"), data_dir=data_dir,
                                        export_options=options)
    assert first["metrics"]["exported_version"] == 1 and "finished" not in first
    again = training.train_and_evaluate(config, str(tmp_path / "work"), data_dir=data_dir,
                                        export_options=options)
    assert again["finished"]
    for key in ("run_id", "test", "history", "exported_version", "export_name"):
        assert again["metrics"][key] == first["metrics"][key], key
    assert sorted(os.listdir(tmp_path / "exports" / "iris_snn")) == ["1"]
    # More epochs, or an export under another name, is work left: it trains or publishes.
    renamed = training.ExportOptions(str(tmp_path / "exports"), "iris_snn_2", formats=())
    other = training.train_and_evaluate(config, str(tmp_path / "work"), data_dir=data_dir,
                                        export_options=renamed)
    assert "finished" not in other and other["metrics"]["exported_version"] == 1
