"""train.py end to end, in subprocesses: every model, resume after SIGKILL, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import registry
from selu_zoo.export import check_serving_graph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "train.py")
TINY = ["--config.epochs=1", "--config.steps_per_epoch=2"]
pytestmark = pytest.mark.slow


def _env(home=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    if home is not None:
        env["HOME"] = str(home)
    return env


def run_train(args, cwd, timeout=420, **kwargs):
    return subprocess.run([sys.executable, TRAIN, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=_env(), **kwargs)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.mark.parametrize("model_name", registry.MODEL_NAMES)
def test_every_model_trains_and_exports(model_name, tmp_path, data_dir):
    result = run_train([f"--model={model_name}", *TINY, f"--data_dir={data_dir}",
                        "--workdir=work", "--export_dir=exports"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    work, exports = tmp_path / "work", tmp_path / "exports" / model_name
    metrics = json.loads((work / "metrics.json").read_text())
    assert metrics["model"] == model_name and metrics["test"]
    assert all(np.isfinite(v) for v in metrics["test"].values())
    assert (work / "checkpoints" / "best.keras").is_file()
    assert list((work / "logs").rglob("events.out.tfevents.*"))
    assert not (work / "backup").exists()  # removed after a successful run
    assert (exports / "1" / "saved_model.pb").is_file()
    assert (exports / f"{model_name}.tflite").is_file()
    loaded = keras.models.load_model(exports / f"{model_name}.keras")
    assert loaded.name == model_name
    check_serving_graph(str(exports / "1"))  # no XLA, only core ops: stock TF Serving loads it
    serving = tf.saved_model.load(str(exports / "1"))
    signature = serving.signatures["serving_default"]
    (name, spec), = signature.structured_input_signature[1].items()
    batch = np.zeros((3, *spec.shape[1:]), spec.dtype.as_numpy_dtype)
    outputs = signature(**{name: tf.constant(batch)})
    expected = loaded.predict(batch, verbose=0)
    served = outputs["x_mean"] if model_name == "snn_vae" else outputs["logits"]
    if model_name == "snn_vae":
        expected = tf.sigmoid(expected).numpy()
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5, atol=1e-5)
    if model_name == "snn_vae":
        assert (work / "vae_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The log ends with where everything is and the test metrics.
    assert "artifact" in result.stderr and "test metrics" in result.stderr


def _backup_epoch(workdir):
    try:
        return json.loads((workdir / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def test_sigkill_mid_run_then_same_command_resumes(tmp_path, data_dir):
    args = ["--model=snn", "--config.epochs=40", f"--data_dir={data_dir}", "--workdir=work",
            "--export_dir=exports"]
    process = subprocess.Popen([sys.executable, TRAIN, *args], cwd=tmp_path, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while _backup_epoch(tmp_path / "work") < 3:
            assert process.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no backup after 300 s"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    killed_at = _backup_epoch(tmp_path / "work")
    assert not (tmp_path / "exports").exists()  # nothing exported by the killed run

    result = run_train(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "work" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] >= killed_at >= 3
    assert f"Epoch {metrics['resumed_from_epoch'] + 1}/40" in result.stdout
    assert "Epoch 1/40" not in result.stdout
    assert metrics["test"]["accuracy"] > 0.85
    model = keras.models.load_model(tmp_path / "exports" / "snn" / "snn.keras")
    assert model.predict(np.zeros((2, 30), "float32"), verbose=0).shape == (2, 2)


BAD_INPUTS = {
    "unknown model": (["--model=resnet"], "resnet"),
    "unknown dataset": (["--model=snn", "--config.dataset=nosuchdata"], "nosuchdata"),
    "missing config file": (["--model=snn", "--config=configs/missing.py"], "missing.py"),
    "zero epochs": (["--model=snn", "--config.epochs=0"], "epochs"),
    "negative batch size": (["--model=snn", "--config.batch_size=-4"], "batch_size"),
    "export_dir is a file": (["--model=snn", "--export_dir=afile"], "afile"),
    "workdir inside a file": (["--model=snn", "--workdir=afile/work"], "afile"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_with_one_line_and_no_artifacts(case, tmp_path, data_dir):
    args, named = BAD_INPUTS[case]
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "broken.py").write_text("def get_config(:\n")
    result = run_train([*args, f"--data_dir={data_dir}"], cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines()
              if "error" in line.lower() and named in line]
    assert errors, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "saved_models").exists()
    assert not list(tmp_path.rglob("*.keras"))


def test_broken_config_file_fails_cleanly(tmp_path):
    (tmp_path / "broken.py").write_text("def get_config(:\n")
    result = run_train(["--model=snn", f"--config={tmp_path / 'broken.py'}"], cwd=tmp_path,
                       timeout=120)
    assert result.returncode != 0
    assert "broken.py" in result.stderr
    assert not (tmp_path / "workdir").exists()


def test_unwritable_workdir_fails_cleanly(tmp_path, data_dir):
    if os.geteuid() == 0:  # root writes through permission bits; /sys refuses even root
        workdir = "/sys/selu_zoo_test_workdir"
        try:
            os.makedirs(workdir)
            os.rmdir(workdir)
            pytest.skip("no folder here that root cannot write")
        except OSError:
            pass
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        workdir = str(locked / "work")
    result = run_train(["--model=snn", f"--workdir={workdir}", f"--data_dir={data_dir}", *TINY],
                       cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert f"train.py: error: --workdir={workdir} is not writable" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "saved_models").exists()
