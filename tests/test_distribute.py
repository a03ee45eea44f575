"""selu_zoo.distribute: strategies by name, the custom loop, and multi-worker runs.

A process's devices and its place in a cluster are fixed once TensorFlow starts, so the
strategy runs happen in other processes (tests/_distribute_job.py), all on 127.0.0.1 with ports
chosen at run time. One module fixture runs them together to keep the wall time down: one
launcher imports TensorFlow once and forks every role; the mirrored-vs-default comparison runs
while a two-worker cluster trains, loses its chief to SIGKILL, and is restarted (new processes,
new ports) to the end.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from _mlp import make_data, make_model
from selu_zoo import distribute
from selu_zoo.distribute import cluster
from selu_zoo.resume import ResumeCheckpoint

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_distribute_job.py")
TIMEOUT = 240  # seconds, per subprocess
EPOCHS = 6


# --- in-process: names, TF_CONFIG, chief and batch rules ------------------------------------

def test_unknown_strategy_and_misplaced_options_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown strategy 'nccl'.*default, mirrored"):
        distribute.make_strategy("nccl")
    with pytest.raises(ValueError, match="num_cpu_devices is for --strategy=mirrored"):
        distribute.make_strategy("default", num_cpu_devices=2)
    with pytest.raises(ValueError, match="positive int"):
        distribute.configure_cpu_devices(0)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', '"cluster" object'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "must name a job"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "index 2 is not in the 2"),
])
def test_bad_tf_config_is_a_one_line_error(text, match):
    with pytest.raises(ValueError, match=match):
        distribute.parse_tf_config({"TF_CONFIG": text})


def test_tf_config_unset_or_valid():
    assert distribute.parse_tf_config({}) is None
    config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
              "task": {"type": "worker", "index": 1}}
    assert distribute.parse_tf_config({"TF_CONFIG": json.dumps(config)}) == config


def _fake_strategy(jobs, task_type, task_id, replicas=2):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(jobs), task_type=task_type, task_id=task_id)
    return types.SimpleNamespace(cluster_resolver=resolver, num_replicas_in_sync=replicas)


def test_chief_and_write_dirs(tmp_path):
    workers = {"worker": ["h:1", "h:2"]}
    with_chief = {"chief": ["h:0"], "worker": ["h:1", "h:2"]}
    assert distribute.is_chief(tf.distribute.get_strategy())
    assert distribute.is_chief(_fake_strategy(workers, "worker", 0))
    assert not distribute.is_chief(_fake_strategy(workers, "worker", 1))
    assert distribute.is_chief(_fake_strategy(with_chief, "chief", 0))
    assert not distribute.is_chief(_fake_strategy(with_chief, "worker", 0))

    target = str(tmp_path / "run" / "backup")
    chief, other = _fake_strategy(workers, "worker", 0), _fake_strategy(workers, "worker", 1)
    assert distribute.write_dir(target, chief) == target
    private = distribute.write_dir(target, other)
    assert private == str(tmp_path / "run" / ".worker-tmp" / "worker-1" / "backup")
    os.makedirs(private)
    cluster.remove_write_dir(target, other)
    assert not (tmp_path / "run" / ".worker-tmp").exists()


def test_global_batch_must_divide_among_replicas():
    strategy = _fake_strategy({"worker": ["h:1"]}, "worker", 0, replicas=4)
    assert distribute.per_replica_batch_size(strategy, 64) == 16
    with pytest.raises(ValueError, match="batch_size 30 must be a positive multiple of the 4"):
        distribute.per_replica_batch_size(strategy, 30)


def test_keras_fit_is_used_only_where_it_works():
    default = tf.distribute.get_strategy()
    assert distribute.strategy_name(default) == "default"
    assert distribute.uses_keras_fit(default, jit_compile=True)
    mirrored = types.SimpleNamespace(num_replicas_in_sync=2)
    assert distribute.uses_keras_fit(mirrored)
    assert not distribute.uses_keras_fit(mirrored, jit_compile=True)


def test_custom_loop_resumes_where_an_uninterrupted_run_would_be(tmp_path):
    """Default strategy, in this process: 2 epochs, then a fresh model resumes to 4 epochs.

    One epoch is exactly one unshuffled pass, so the restarted data stream is the stream an
    uninterrupted run would see, and the weights must agree bit for bit (alpha dropout
    included: its seed generators are checkpointed too).
    """
    x, y = make_data(n=128)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
    strategy = tf.distribute.get_strategy()

    def train(model, folder, epochs, **extra):
        resume = ResumeCheckpoint(model, str(tmp_path / folder))
        return distribute.train(model, strategy, batches, global_batch_size=32, epochs=epochs,
                                steps_per_epoch=4, initial_epoch=resume.restore(),
                                resume=resume, **extra)

    straight = make_model(dropout_rate=0.1)  # also: two steps per call change nothing
    train(straight, "straight", 4, steps_per_execution=2)
    first = train(make_model(dropout_rate=0.1), "resumed", 2)
    resumed = make_model(dropout_rate=0.1)
    second = train(resumed, "resumed", 4)
    assert (first.initial_epoch, first.epochs) == (0, 2)
    assert (second.initial_epoch, second.epochs) == (2, 4)
    assert len(second.history["loss"]) == 2
    assert ResumeCheckpoint(make_model(), str(tmp_path / "resumed")).complete_epochs()[0] == 4
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Nothing left to do: a third call trains no epoch.
    third = train(make_model(dropout_rate=0.1), "resumed", 4)
    assert (third.initial_epoch, third.history) == (4, {})


def test_custom_loop_stops_on_a_non_finite_loss_without_checkpointing_it(tmp_path):
    x, y = make_data(n=64)
    x[40] = np.nan  # in the second of two batches
    model = make_model()
    resume = ResumeCheckpoint(model, str(tmp_path))
    with pytest.raises(distribute.NonFiniteLossError, match="nan in epoch 1"):
        distribute.train(model, tf.distribute.get_strategy(),
                         tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat(),
                         global_batch_size=32, epochs=2, steps_per_epoch=2, resume=resume)
    assert resume.complete_epochs() == []


# --- subprocesses: mirrored vs default; a killed and restarted two-worker cluster -----------

def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "TPU_NAME")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def _cluster_roles(prefix, workdir, out, logs, extra_args):
    """The two worker roles of a cluster on fresh localhost ports."""
    addresses = [f"127.0.0.1:{port}" for port in distribute.free_local_ports(2)]
    roles = []
    for index in range(2):
        tf_config = {"cluster": {"worker": addresses},
                     "task": {"type": "worker", "index": index}}
        roles.append({
            "name": f"{prefix}{index}", "env": {"TF_CONFIG": json.dumps(tf_config)},
            "log": os.path.join(logs, f"{prefix}{index}.log"),
            "args": ["--job=multi_worker", f"--workdir={workdir}", f"--out={out}",
                     f"--epochs={EPOCHS}", *extra_args]})
    return roles


class _Roles:
    """The processes forked by one ``_distribute_job.py --job=processes`` launcher."""

    def __init__(self, root, roles):
        self.status = root / "status"
        self.logs = {role["name"]: role["log"] for role in roles}
        spec = root / "spec.json"
        spec.write_text(json.dumps({"roles": roles}))
        log = open(root / "launcher.log", "w", encoding="utf-8")  # noqa: SIM115
        self.launcher = subprocess.Popen(
            [sys.executable, JOB, "--job=processes", f"--spec={spec}", f"--out={self.status}"],
            stdout=log, stderr=subprocess.STDOUT, env=_env())
        log.close()

    def _read(self, name, suffix):
        try:
            return int((self.status / f"{name}.{suffix}").read_text())
        except (OSError, ValueError):
            return None

    def running(self, name):
        return self._read(name, "pid") is not None and self._read(name, "rc") is None

    def kill(self, name):
        os.kill(self._read(name, "pid"), signal.SIGKILL)

    def wait(self, name, timeout=TIMEOUT):
        """The role's exit code; fails the test if it does not end within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (code := self._read(name, "rc")) is None:
            assert self.launcher.poll() is None, f"launcher ended: {self.tail('launcher')}"
            assert time.monotonic() < deadline, f"{name} still running after {timeout} s"
            time.sleep(0.05)
        return code

    def tail(self, name, chars=3000):
        path = self.logs.get(name, str(self.status.parent / "launcher.log"))
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]

    def close(self):
        """Kills whatever still runs (after a failure) and reaps the launcher."""
        for name in self.logs:
            if self.running(name):
                os.kill(self._read(name, "pid"), signal.SIGKILL)
        try:
            self.launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.launcher.kill()
            self.launcher.wait(timeout=30)


def _checkpoint_epoch(workdir):
    """The epoch of the chief's newest complete checkpoint (its ``ckpt-N.done`` marker)."""
    try:
        names = os.listdir(os.path.join(workdir, "checkpoints"))
    except OSError:
        return 0
    return max((int(n[len("ckpt-"):-len(".done")]) for n in names
                if n.startswith("ckpt-") and n.endswith(".done")), default=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs every process once; returns paths, exit codes and what the runs wrote.

    Roles: ``compare`` (mirrored vs default), ``first0``/``first1`` (a cluster whose chief is
    SIGKILLed after its second checkpoint) and ``second0``/``second1`` (the restarted cluster:
    new processes on new ports, released once the first cluster is gone).
    """
    root = tmp_path_factory.mktemp("distribute")
    logs, workdir, go = root / "logs", str(root / "cluster"), root / "restart"
    logs.mkdir()
    roles = [{"name": "compare", "args": ["--job=compare", f"--out={root / 'compare'}"],
              "log": str(logs / "compare.log")}]
    roles += _cluster_roles("first", workdir, str(root / "first"), str(logs),
                            ["--pause_after=2"])
    roles += _cluster_roles("second", workdir, str(root / "second"), str(logs),
                            [f"--chief_stops_after={EPOCHS - 1}", f"--wait_for={go}"])
    processes = _Roles(root, roles)
    try:
        deadline = time.monotonic() + TIMEOUT
        while _checkpoint_epoch(workdir) < 2:
            for name in ("first0", "first1"):
                assert processes._read(name, "rc") is None, (
                    f"{name} ended before the kill: {processes.tail(name)}")
            assert time.monotonic() < deadline, "no second checkpoint in time"
            time.sleep(0.05)
        processes.kill("first0")  # the chief, which holds the checkpoints
        killed_at = _checkpoint_epoch(workdir)
        # The other worker notices and fails by itself.
        first_codes = [processes.wait("first0", 30), processes.wait("first1", 90)]
        go.write_text("restart")
        codes = {name: processes.wait(name) for name in ("second0", "second1", "compare")}
    finally:
        processes.close()
    return types.SimpleNamespace(root=root, workdir=workdir, killed_at=killed_at,
                                 first_codes=first_codes, codes=codes, processes=processes)


def _weights(path):
    with np.load(path) as data:
        return [data[name] for name in data.files]


def test_mirrored_on_two_cpu_devices_matches_default(runs):
    assert runs.codes["compare"] == 0, runs.processes.tail("compare")
    out = runs.root / "compare"
    summary = json.loads((out / "compare.json").read_text())
    assert summary["mirrored-fit"]["replicas"] == summary["mirrored-custom"]["replicas"] == 2
    reference = _weights(out / "default-fit.npz")
    for name in ("mirrored-fit", "default-custom", "mirrored-custom"):
        for ours, theirs in zip(_weights(out / f"{name}.npz"), reference):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(summary[name]["history"]["loss"],
                                   summary["default-fit"]["history"]["loss"], rtol=1e-5)
    losses = summary["default-fit"]["history"]["loss"]
    assert losses[-1] < losses[0]


def test_tpu_without_a_tpu_fails_with_one_line(runs):
    assert runs.codes["compare"] == 0, runs.processes.tail("compare")
    summary = json.loads((runs.root / "compare" / "compare.json").read_text())
    message = summary["tpu_error"]
    assert message.startswith("--strategy=tpu: no TPU reachable") and "\n" not in message


def test_two_workers_finish_with_identical_weights_and_falling_loss(runs):
    assert [runs.codes["second0"], runs.codes["second1"]] == [0, 0], (
        runs.processes.tail("second0") + runs.processes.tail("second1"))
    out = runs.root / "second"
    chief = json.loads((out / "worker-0.json").read_text())
    other = json.loads((out / "worker-1.json").read_text())
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["strategy"] == "MultiWorkerMirroredStrategy"
    for a, b in zip(_weights(out / "worker-0.npz"), _weights(out / "worker-1.npz")):
        np.testing.assert_array_equal(a, b)
    assert chief["history"] == other["history"]  # metrics are all-reduced
    # The chief alone asked to stop after EPOCHS - 1 epochs; both stopped there.
    assert chief["epochs"] == other["epochs"] == EPOCHS - 1
    with open(os.path.join(runs.workdir, "history.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    losses = [float(row["loss"]) for row in rows]
    assert losses[-1] < 0.8 * losses[0]
    assert float(rows[-1]["val_accuracy"]) > 0.7
    # Validation with uneven shards (one worker's last batch is empty) and a loss the model
    # adds itself agrees with Keras' own evaluate of the exported model on one device.
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(chief["history"][f"val_{name}"][-1],
                                   chief["keras_evaluate"][name], rtol=1e-5)


def test_only_the_chief_writes_checkpoints_logs_and_exports(runs):
    out = runs.root / "second"
    chief = json.loads((out / "worker-0.json").read_text())
    other = json.loads((out / "worker-1.json").read_text())
    assert chief["chief"] and not other["chief"]
    assert other["prepared"]  # chief_first: the chief's preparation was there before
    assert chief["exported"] == os.path.join(runs.workdir, "export", "model.keras")
    assert other["exported"] is None
    work = runs.root / "cluster"
    assert sorted(os.listdir(work / "export")) == ["model.keras"]
    assert (work / "best.keras").is_file()
    assert list((work / "logs").rglob("events.out.tfevents.*"))
    assert not (work / ".worker-tmp").exists()  # the other worker's copies are gone
    assert (work / "checkpoints" / f"ckpt-{EPOCHS - 1}.done").is_file()
    assert not (work / "checkpoints" / f"ckpt-{EPOCHS}.done").exists()


def test_killed_cluster_restarts_from_the_last_checkpoint(runs):
    assert runs.first_codes[0] == -signal.SIGKILL
    assert runs.first_codes[1] not in (0, None), "the surviving worker did not fail"
    assert not (runs.root / "first" / "worker-0.json").exists()  # killed before the end
    chief = json.loads((runs.root / "second" / "worker-0.json").read_text())
    other = json.loads((runs.root / "second" / "worker-1.json").read_text())
    assert runs.killed_at == 2  # the chief held still after its second checkpoint
    assert chief["initial_epoch"] == other["initial_epoch"] == runs.killed_at
    assert len(chief["history"]["loss"]) == EPOCHS - 1 - runs.killed_at
    # The chief's CSV log goes on after the kill: no epoch twice, the resumed ones at the end.
    # (An epoch's row follows its checkpoint, so a kill between the two loses one row.)
    with open(os.path.join(runs.workdir, "history.csv"), encoding="utf-8") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == sorted(set(epochs))
    assert epochs[-(EPOCHS - 1 - runs.killed_at):] == list(range(runs.killed_at, EPOCHS - 1))
