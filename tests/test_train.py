"""train.py as users run it: the console, bad input, full disks, SIGKILL and Ctrl-C."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAIN = str(REPO_ROOT / "train.py")
CASES = str(REPO_ROOT / "tests" / "_train_cases.py")
SMALL = ["--config.depth=1", "--config.width=16", "--config.jit_compile=False"]
# TensorFlow's own C++ lines and chatter that the console must not show.
NOISE = ("I0000", "W0000", "E0000", "absl::InitializeLog", "cpu_feature_guard", "cuda",
         "oneDNN", "fully_quantize", "Sharding callback", "XNNPACK", "Generating splits")


def _env():
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_train(args, cwd, timeout=600):
    return subprocess.run([sys.executable, TRAIN, *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


# --- the main job --------------------------------------------------------------------------


def test_the_main_job_console_is_short_and_free_of_tensorflow_chatter(tmp_path, data_dir):
    """``python train.py --model=snn_vae --config.epochs=3 > log 2>&1``: at most 45 lines."""
    with open(tmp_path / "log", "w") as log:
        code = subprocess.run([sys.executable, TRAIN, "--model=snn_vae", "--config.epochs=3",
                               f"--data_dir={data_dir}"], cwd=tmp_path, env=_env(),
                              stdout=log, stderr=subprocess.STDOUT, timeout=600).returncode
    lines = (tmp_path / "log").read_text().splitlines()
    assert code == 0, "\n".join(lines[-40:])
    assert len(lines) <= 45, "\n".join(lines)
    assert not [line for line in lines if any(word in line for word in NOISE)]
    assert sum(line.split(" ", 1)[-1].startswith("epoch ") for line in lines) == 3
    summary = [line for line in lines if line.startswith("snn_vae on digits: test ")]
    assert summary and "elbo -" in summary[0] and "exported as version 1" in summary[0]
    # The exported SavedModel serves what the .keras file computes.
    version = tmp_path / "saved_models" / "snn_vae" / "1"
    model = keras.models.load_model(version / "assets.extra" / "snn_vae.keras")
    signature = tf.saved_model.load(str(version)).signatures["reconstruct"]
    x = np.random.default_rng(0).random((3, 64)).astype("float32")
    served = signature(features=tf.constant(x))["x_mean"].numpy()
    np.testing.assert_allclose(served, tf.sigmoid(model(x)).numpy(), rtol=1e-5, atol=1e-5)


def test_a_config_typo_is_one_line_naming_the_closest_fields(tmp_path):
    result = run_train(["--model=snn", "--config.epocs=3"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "train.py: error: unknown config field 'epocs' in snn.py; did you mean epochs?"]


def test_another_keras_backend_is_one_line_before_anything_runs(tmp_path):
    result = subprocess.run([sys.executable, TRAIN, "--model=snn"], cwd=tmp_path,
                            env={**_env(), "KERAS_BACKEND": "jax"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "train.py: error: train.py needs the TensorFlow Keras backend, got KERAS_BACKEND=jax; "
        "run it with KERAS_BACKEND=tensorflow (selu_zoo's layers and models run on jax and "
        "torch too: load the exported .keras file there)"]
    assert not list(tmp_path.iterdir())


# --- many command lines in one process (forked per case) -----------------------------------


def _bad(args, *named):
    return {"args": args, "named": named}


BAD = {
    "unknown model": _bad(["--model=resnet"], "resnet"),
    "unknown dataset": _bad(["--config.dataset=nosuchdata"], "nosuchdata"),
    "missing config file": _bad(["--config=configs/missing.py"], "missing.py"),
    "broken config file": _bad(["--config=broken.py"], "broken.py"),
    "unknown field of a named config": _bad([f"--config={REPO_ROOT}/configs/snn.py",
                                             "--config.widht=3"],
                                            "unknown config field 'widht' in snn.py",
                                            "did you mean width"),
    "wrong type": _bad(["--config.seed=abc"], "config.seed", "abc"),
    "negative seed": _bad(["--config.seed=-1"], "config.seed must be an integer >= 0, got -1"),
    "negative clip": _bad(["--config.clip_standardized=-1"],
                          "config.clip_standardized must be None or a number > 0"),
    "zero epochs": _bad(["--config.epochs=0"], "config.epochs"),
    "stray argument": _bad(["stray"], "unexpected argument 'stray'"),
    "export_dir is a file": _bad(["--export_dir=afile"], "--export_dir=afile is a file"),
    "workdir inside a file": _bad(["--workdir=afile/work"], "--workdir=afile/work",
                                  "not a directory"),
    "export_dir under /sys": _bad(["--export_dir=/sys/selu_zoo"], "--export_dir=/sys/selu_zoo",
                                  "not writable"),
    "export_dir name too long": _bad([f"--export_dir={'x' * 300}"], "file name too long"),
    "corrupt models.config": _bad(["--export_dir=corrupt_exports"], "models.config"),
    "csv without its label": _bad(["--config.dataset=csv:table.csv",
                                   "--config.label_column=kind"], "table.csv",
                                  "no label column 'kind'"),
}


def _file_name(case):
    return "".join(c if c.isalnum() else "_" for c in case)


@pytest.fixture(scope="module")
def cases(tmp_path_factory, data_dir):
    """Runs every case of `BAD` and the full-disk pair through tests/_train_cases.py."""
    root = tmp_path_factory.mktemp("cases")
    (root / "afile").write_text("not a folder")
    (root / "broken.py").write_text("def get_config(:\n")
    (root / "corrupt_exports").mkdir()
    (root / "corrupt_exports" / "models.config").write_text("model_config_list { config {")
    (root / "table.csv").write_text("a,b,species\n" + "".join(
        f"{i},{i % 3},{'xyz'[i % 3]}\n" for i in range(30)))
    common = [f"--data_dir={data_dir}", *SMALL]
    spec = [{"name": _file_name(name), "args": ["--model=snn", *case["args"], *common],
             "cwd": str(root)} for name, case in BAD.items()]
    # 2 x 256 units: the best model (~0.9 MB with Adam's slots) is the first large write.
    full_disk = ["--model=snn", "--config.epochs=2", "--workdir=full",
                 "--export_dir=full_exports", f"--data_dir={data_dir}", "--config.depth=2",
                 "--config.width=256", "--config.jit_compile=False"]
    spec += [{"name": "full_disk", "args": full_disk, "cwd": str(root),
              "file_size_limit": 200_000},
             {"name": "after_space_was_freed", "args": full_disk, "cwd": str(root)}]
    (root / "cases.json").write_text(json.dumps(spec))
    out = root / "out"
    out.mkdir()
    result = subprocess.run([sys.executable, CASES, str(root / "cases.json"), str(out)],
                            env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    def read(name):
        name = _file_name(name)
        return (int((out / f"{name}.code").read_text()), (out / f"{name}.out").read_text(),
                (out / f"{name}.err").read_text())

    return root, read


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_nothing_written(cases, case):
    root, read = cases
    code, stdout, stderr = read(case)
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("train.py: error: ")]
    assert len(errors) == 1, stderr
    for fragment in BAD[case]["named"]:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not list(root.glob("saved_models/*/1"))
    assert not list((root / "workdir").rglob("best.keras"))


def test_a_full_disk_is_one_line_and_the_next_run_works(cases):
    """A file-size limit stands in for a full disk: the first large write fails."""
    root, read = cases
    code, _, stderr = read("full_disk")
    assert code == 2, stderr[-3000:]  # an error we report, not a crash (139 is a segfault)
    errors = [line for line in stderr.splitlines() if line.startswith("train.py: error: ")]
    assert len(errors) == 1 and "file too large" in errors[0], stderr[-3000:]
    assert "cannot write" in errors[0] and "Traceback" not in stderr
    code, stdout, stderr = read("after_space_was_freed")
    assert code == 0, stderr[-3000:]
    assert "exported as version 1" in stdout  # the failed run published nothing
    assert (root / "full_exports" / "snn" / "1" / "saved_model.pb").is_file()


# --- SIGKILL, Ctrl-C and resuming ----------------------------------------------------------


PAUSED = str(REPO_ROOT / "tests" / "_train_paused.py")


def _start_paused(args, cwd, epoch, **popen):
    """train.py with ``args``, holding still after its checkpoint of ``epoch`` (see
    tests/_train_paused.py); returns the process and the file that marks the pause."""
    paused = cwd / f"paused-{epoch}"
    env = {**_env(), "PAUSE_AFTER_EPOCH": str(epoch), "PAUSED_FILE": str(paused)}
    return subprocess.Popen([sys.executable, PAUSED, *args], cwd=cwd, env=env, **popen), paused


def _wait_until_paused(process, paused, timeout=300):
    """The epoch whose checkpoint the paused run holds; fails if the run ends first."""
    deadline = time.monotonic() + timeout
    while not paused.exists():
        assert process.poll() is None, "training ended before its pause"
        assert time.monotonic() < deadline, f"no pause after {timeout} s"
        time.sleep(0.02)
    return int(paused.read_text())


def test_killed_or_interrupted_runs_resume_where_they_stopped(tmp_path, data_dir):
    """SIGKILL after epoch 3, Ctrl-C (a real SIGINT) after epoch 5 of the resumed run, then
    a run to the end. Each signal reaches a run held at a known epoch boundary, so the test
    does not race training however fast the machine is."""
    args = ["--model=snn", "--config.epochs=12", "--config.checkpoint_every=1",
            f"--data_dir={data_dir}", "--workdir=work", "--noexport", *SMALL]
    workdir = tmp_path / "work"
    process, paused = _start_paused(args, tmp_path, 3, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    try:
        killed_at = _wait_until_paused(process, paused)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert killed_at == 3

    process, paused = _start_paused(args, tmp_path, killed_at + 2, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
    try:
        interrupted_at = _wait_until_paused(process, paused)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert interrupted_at == killed_at + 2
    assert f"resuming at epoch {killed_at + 1} of 12" in stderr
    errors = [line for line in stderr.splitlines() if "train.py: error:" in line]
    assert len(errors) == 1 and f"interrupted at epoch {interrupted_at}" in errors[0], stderr
    assert "run the same command to resume" in errors[0] and "Traceback" not in stderr

    result = run_train(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == interrupted_at > killed_at
    assert len(metrics["history"]["loss"]) == 12  # every epoch once, across the three runs
    assert "epoch 1/12" not in result.stderr and f"epoch {interrupted_at + 1}/12" in result.stderr
    assert metrics["test"]["accuracy"] > 0.8
