"""selu_zoo.runs: a workdir holds one run; resume only the same config."""

import json

import ml_collections
import pytest

from selu_zoo import runs, storage


def _config(**overrides):
    config = ml_collections.ConfigDict({"model": "snn", "epochs": 3, "depth": 4, "width": 256,
                                        "feature_shape": (8, 8), "learning_rate": 1e-3})
    config.update(overrides)
    return config


def _begun(workdir, config, **kwargs):
    run = runs.open_run(workdir, config, **kwargs)
    run.begin()
    return run


def test_a_fresh_run_writes_its_config_when_it_begins(tmp_path):
    run = runs.open_run(str(tmp_path / "w"), _config())
    assert not (tmp_path / "w").exists()  # nothing yet: a run that fails early leaves no trace
    run.begin()
    assert not run.resumed and len(run.run_id) == 32
    record = json.loads((tmp_path / "w" / "config.json").read_text())
    assert record["run_id"] == run.run_id and record["config"]["feature_shape"] == [8, 8]
    assert run.best_checkpoint == str(tmp_path / "w" / "checkpoints" / "best.keras")


def test_the_same_config_resumes_and_epochs_may_change(tmp_path):
    first = _begun(str(tmp_path), _config())
    second = _begun(str(tmp_path), _config(epochs=10))
    assert second.resumed and second.run_id == first.run_id
    assert json.loads((tmp_path / "config.json").read_text())["config"]["epochs"] == 10


def test_another_config_is_refused_naming_the_fields_and_the_way_out(tmp_path):
    _begun(str(tmp_path), _config())
    with pytest.raises(runs.RunMismatchError) as error:
        runs.open_run(str(tmp_path), _config(depth=1, width=8, learning_rate=1e-6))
    message = str(error.value)
    assert "\n" not in message and "--restart" in message
    for field in ("config.depth: 4 -> 1", "config.width: 256 -> 8",
                  "config.learning_rate: 0.001 -> 1e-06"):
        assert field in message


def test_restart_deletes_the_run_and_nothing_else(tmp_path):
    first = _begun(str(tmp_path), _config())
    for entry in ("checkpoints", "logs", "pictures"):
        (tmp_path / entry).mkdir()
        (tmp_path / entry / "file").write_text("old")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    second = _begun(str(tmp_path), _config(depth=1), restart=True)
    assert second.run_id != first.run_id and not second.resumed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "notes.txt"]


def test_files_of_a_run_without_config_are_refused(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(runs.RunMismatchError, match="without config.json .*checkpoints"):
        runs.open_run(str(tmp_path), _config())


def test_a_corrupt_config_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(storage.CorruptFileError, match="config.json is corrupt.*--restart"):
        runs.open_run(str(tmp_path), _config())


def test_metrics_are_written_in_the_workdir(tmp_path):
    run = _begun(str(tmp_path), _config())
    path = run.write_metrics({"run_id": run.run_id, "test": {"accuracy": 0.9}})
    assert path == str(tmp_path / "metrics.json")
    assert json.loads(open(path).read()) == {"run_id": run.run_id, "test": {"accuracy": 0.9}}


def test_runs_on_other_filesystems(tmp_path):
    workdir = "ram://runs_test/w"
    first = _begun(workdir, _config())
    assert _begun(workdir, _config(epochs=5)).run_id == first.run_id
    with pytest.raises(runs.RunMismatchError):
        runs.open_run(workdir, _config(width=1))
