"""One process of tests/test_distribute.py: trains a small SELU MLP under a strategy.

Run by the tests in subprocesses (a strategy's devices and cluster are per process):

    python tests/_distribute_job.py --job=compare --out=DIR
        two logical CPU devices; Keras fit and the custom loop under default and mirrored;
        writes DIR/<strategy>-<loop>.npz (final weights) and DIR/compare.json.
    TF_CONFIG=... python tests/_distribute_job.py --job=multi_worker --workdir=W --out=DIR
        one worker of a cluster: custom loop with checkpoints in W/checkpoints, best model in
        W/best.keras and the "export" W/export/model.keras written by the chief only; writes
        DIR/<task_type>-<task_id>.json and .npz.
    python tests/_distribute_job.py --job=processes --spec=SPEC.json --out=DIR
        imports TensorFlow once, then forks one process per role of SPEC (``{"roles": [{"name",
        "args", "env", "log"}]}``), each running this script's main with its own arguments
        and environment (e.g. TF_CONFIG) and its output in its own log; writes DIR/<name>.pid
        when a role starts and DIR/<name>.rc (exit code, -9 when SIGKILLed) when it ends.
        Forking before TensorFlow initializes its runtime saves every role the seconds of
        importing TensorFlow; each role still has its own devices, cluster server and runtime.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_TESTS), _TESTS]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from _mlp import make_data, make_model  # noqa: E402
from selu_zoo import callbacks as selu_callbacks, distribute  # noqa: E402
from selu_zoo.resume import ResumeCheckpoint  # noqa: E402

_JOB = flags.DEFINE_enum("job", "compare", ["compare", "multi_worker", "processes"],
                         "What to run.")
_SPEC = flags.DEFINE_string("spec", None, "Roles to fork (--job=processes).")
_OUT = flags.DEFINE_string("out", None, "Folder for the results.", required=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (multi_worker).")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Epochs.")
_STEPS = flags.DEFINE_integer("steps_per_epoch", 6, "Steps per epoch.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Global batch size.")
_DROPOUT = flags.DEFINE_float("dropout_rate", 0.0, "Alpha dropout rate of the SELU layers.")
_PAUSE_AFTER = flags.DEFINE_integer(
    "pause_after", None, "The chief holds still after this epoch's checkpoint and callbacks "
    "until it is killed (the other workers then wait in the next collective step).")
_WAIT_FOR = flags.DEFINE_string(
    "wait_for", None, "Start only once this file exists (lets a test start the processes of a "
    "restarted cluster while the old one still runs, so the restart does not wait for imports).")
_STOP_AFTER = flags.DEFINE_integer("chief_stops_after", None,
                                   "The chief alone sets model.stop_training after this epoch.")


def _save_weights(path, model):
    np.savez(path, *[np.asarray(w) for w in model.get_weights()])


# Alpha dropout on in the comparison: masks keyed by the global example index are the same
# on one device and on two replicas.
COMPARE_DROPOUT = 0.1


def run_compare(out):
    """Fit and custom loop, default and mirrored, from the same initial weights and data,
    alpha dropout on."""
    distribute.configure_cpu_devices(2)
    x, y = make_data()
    initial = make_model(dropout_rate=COMPARE_DROPOUT).get_weights()
    summary = {}
    for name in ("default", "mirrored"):
        strategy = distribute.make_strategy(name, num_cpu_devices=2 if name == "mirrored"
                                            else None)
        for loop in ("fit", "custom"):
            with strategy.scope():
                model = make_model(dropout_rate=COMPARE_DROPOUT)
                model.set_weights(initial)
            data = tf.data.Dataset.from_tensor_slices((x, y)).batch(
                _BATCH.value, drop_remainder=True).repeat()
            if loop == "fit":
                history = model.fit(data, epochs=_EPOCHS.value, steps_per_epoch=_STEPS.value,
                                    verbose=0).history
            else:
                history = distribute.train(
                    model, strategy, data, global_batch_size=_BATCH.value,
                    epochs=_EPOCHS.value, steps_per_epoch=_STEPS.value).history
            _save_weights(os.path.join(out, f"{name}-{loop}.npz"), model)
            summary[f"{name}-{loop}"] = {"replicas": strategy.num_replicas_in_sync,
                                         "history": history}
    try:  # no TPU here: one line, no traceback
        distribute.make_strategy("tpu")
        summary["tpu_error"] = None
    except RuntimeError as error:
        summary["tpu_error"] = str(error)
    with open(os.path.join(out, "compare.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f)


class _PauseAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        while epoch + 1 >= self.epochs:
            time.sleep(0.05)


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


def run_multi_worker(out, workdir):
    """One worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG)."""
    strategy = distribute.make_strategy("multi_worker")
    chief = distribute.is_chief(strategy)
    os.makedirs(out, exist_ok=True)
    marker = os.path.join(out, "prepared-by-chief")

    def prepare():  # stands for preparing a dataset in a shared data_dir
        if chief:
            with open(marker, "w", encoding="utf-8") as f:
                f.write("ok")
        return os.path.exists(marker)

    prepared = distribute.chief_first(strategy, prepare)
    x, y = make_data()
    # 70 = 32 + 32 + 6 examples for 2 replicas of 32: the second worker's last batch is empty.
    x_val, y_val = make_data(n=70, seed=1)
    with strategy.scope():
        model = make_model(dropout_rate=_DROPOUT.value, activity_l2=1e-3)
    callbacks = []
    if chief:
        callbacks += [selu_callbacks.BestModelCheckpoint(os.path.join(workdir, "best.keras"),
                                                         run_id="cluster"),
                      keras.callbacks.TensorBoard(os.path.join(workdir, "logs"),
                                                  write_graph=False),
                      keras.callbacks.CSVLogger(os.path.join(workdir, "history.csv"),
                                                append=True)]
        if _STOP_AFTER.value is not None:
            callbacks.append(_StopAfter(_STOP_AFTER.value))
        if _PAUSE_AFTER.value is not None:
            callbacks.append(_PauseAfter(_PAUSE_AFTER.value))
    batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        len(x), seed=0, reshuffle_each_iteration=True).batch(_BATCH.value,
                                                             drop_remainder=True).repeat()
    resume = ResumeCheckpoint(model, os.path.join(workdir, "checkpoints"), strategy)
    result = distribute.train(
        model, strategy, batches, global_batch_size=_BATCH.value, epochs=_EPOCHS.value,
        steps_per_epoch=_STEPS.value, initial_epoch=resume.restore(), resume=resume,
        validation_batches=tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(
            _BATCH.value), callbacks=callbacks)
    exported = selu_callbacks.save_model(model, os.path.join(workdir, "export", "model.keras")) \
        if chief else None
    reference = None
    if exported:  # the same validation loss, by Keras on one device
        reference = keras.models.load_model(exported).evaluate(
            x_val, y_val, batch_size=_BATCH.value, verbose=0, return_dict=True)
    task_type, task_id = distribute.task(strategy)
    name = f"{task_type}-{task_id}"
    _save_weights(os.path.join(out, f"{name}.npz"), model)
    with open(os.path.join(out, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"chief": chief, "initial_epoch": result.initial_epoch,
                   "epochs": result.epochs, "history": result.history,
                   "exported": exported,
                   "replicas": strategy.num_replicas_in_sync, "prepared": prepared,
                   "strategy": distribute.strategy_name(strategy),
                   "keras_evaluate": reference}, f)
    logging.info("done: %s", name)


def _wait_for(path, timeout=300):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout} s")
        time.sleep(0.02)


def _write_atomic(path, text):
    with open(f"{path}.tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(f"{path}.tmp", path)


def _run_role(role):
    """In a forked child: run main with the role's arguments, environment and log; exit."""
    os.environ.update(role.get("env", {}))
    log = os.open(role["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    verbosity = logging.get_verbosity()  # re-parsing the flags would reset it to WARNING
    flags.FLAGS.unparse_flags()
    flags.FLAGS([sys.argv[0], *role["args"]])
    logging.set_verbosity(verbosity)
    try:
        main([sys.argv[0]])
        code = 0
    except BaseException:  # noqa: BLE001  (reported in the role's log, as a process would)
        import traceback  # noqa: PLC0415
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def run_processes(spec_path, out):
    """Forks the roles of ``spec_path``; records their pids and exit codes in ``out``."""
    with open(spec_path, encoding="utf-8") as f:
        roles = json.load(f)["roles"]
    names = {}
    for role in roles:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_role(role)  # never returns
        names[pid] = role["name"]
        _write_atomic(os.path.join(out, f"{role['name']}.pid"), str(pid))
    while names:
        pid, status = os.wait()
        _write_atomic(os.path.join(out, f"{names.pop(pid)}.rc"),
                      str(os.waitstatus_to_exitcode(status)))


def main(argv):
    del argv
    if _JOB.value == "processes":
        os.makedirs(_OUT.value, exist_ok=True)
        run_processes(_SPEC.value, _OUT.value)
        return
    if _WAIT_FOR.value:
        _wait_for(_WAIT_FOR.value)
    os.makedirs(_OUT.value, exist_ok=True)
    if _JOB.value == "compare":
        run_compare(_OUT.value)
    else:
        run_multi_worker(_OUT.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
