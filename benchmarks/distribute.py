r"""Training throughput of an snn-like MLP under default, mirrored and multi_worker strategies.

    python -m benchmarks.distribute            # or: python benchmarks/distribute.py
    python -m benchmarks.distribute --quick    # fewer, shorter epochs

Same model, same global batch, same number of steps everywhere; what changes is how the
work is split:

- ``default``: one process, one device;
- ``mirrored``: one process, ``tf.distribute.MirroredStrategy`` over 2 logical CPU devices;
- ``multi_worker``: 2 processes on this machine (``TF_CONFIG`` on 127.0.0.1, ports chosen at
  run time), ``MultiWorkerMirroredStrategy``, one replica each.

Each configuration runs in fresh processes, one after the other. Throughput is global
examples per second of the training steps (median over the measured epochs; the first epoch,
which traces and compiles, is not measured), through `selu_zoo.distribute.train` (the custom
loop, with and without XLA per replica) and, where it works, Keras ``fit``. The overhead
ratio of a configuration is ``default throughput / its throughput`` with the same loop and
XLA setting: above 1 means slower than one device. The replicas share the machine's cores,
so on a small CPU no speed-up is expected; the ratios measure what the replication and the
all-reduce cost. Results go to ``benchmarks/results/distribute.json``.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # `python benchmarks/distribute.py` puts benchmarks/ first instead
    sys.path.insert(0, _ROOT)

from absl import app, flags, logging  # noqa: E402

_QUICK = flags.DEFINE_bool("quick", False, "Fewer, shorter epochs (a smoke run).")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(_ROOT, "benchmarks", "results", "distribute.json"),
    "Where the JSON results go.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Epochs per run; the first is not measured.")
_STEPS = flags.DEFINE_integer("steps", 100, "Training steps per epoch.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Global batch size.")
_FEATURES = flags.DEFINE_integer("features", 784, "Input features.")
_DEPTH = flags.DEFINE_integer("depth", 4, "SELUDense layers.")
_WIDTH = flags.DEFINE_integer("width", 512, "Units per SELUDense layer.")
_DROPOUT = flags.DEFINE_float("dropout_rate", 0.05, "Alpha dropout rate after each SELU.")
_TIMEOUT = flags.DEFINE_integer("timeout", 900, "Seconds allowed per measuring process.")
# Internal: what one measuring process does.
_ROLE = flags.DEFINE_enum("role", None, ["default", "mirrored", "multi_worker"],
                          "Internal: measure one strategy in this process.")
_ROLE_OUTPUT = flags.DEFINE_string("role_output", None, "Internal: JSON of one role.")

CLASSES = 10
LOOPS = (("custom", False), ("custom", True), ("fit", False))


def _make_model(strategy, jit_compile):
    """The snn-like MLP: depth x SELUDense(width, alpha dropout) and a Dense "logits" head."""
    import keras  # noqa: PLC0415
    from selu_zoo.layers import SELUDense  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    with strategy.scope():
        inputs = keras.Input((_FEATURES.value,), name="features")
        h = inputs
        for i in range(_DEPTH.value):
            h = SELUDense(_WIDTH.value, dropout_rate=_DROPOUT.value, seed=i)(h)
        model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(h))
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=jit_compile)
    return model


def _examples():
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    rng = np.random.default_rng(0)
    n = 8 * _BATCH.value
    x = rng.normal(size=(n, _FEATURES.value)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=n).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((x, y)).cache()


def _fit_seconds(model, examples):
    """Per-epoch seconds of Keras fit (no validation)."""
    import keras  # noqa: PLC0415

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    data = examples.repeat().batch(_BATCH.value, drop_remainder=True).prefetch(2)
    model.fit(data, epochs=_EPOCHS.value, steps_per_epoch=_STEPS.value, callbacks=[timer],
              verbose=0)
    return timer.seconds


def measure(role):
    """In a measuring process: examples/s of each loop under the strategy ``role``."""
    from selu_zoo import distribute  # noqa: PLC0415

    strategy = distribute.make_strategy(
        role, num_cpu_devices=2 if role == distribute.MIRRORED else None)
    examples = _examples()
    results = {}
    for loop, jit in LOOPS:
        if loop == "fit" and not distribute.uses_keras_fit(strategy, jit_compile=jit):
            continue
        model = _make_model(strategy, jit)
        if loop == "fit":
            seconds = _fit_seconds(model, examples)
        else:
            seconds = distribute.train(
                model, strategy, examples.repeat().batch(_BATCH.value, drop_remainder=True),
                global_batch_size=_BATCH.value, epochs=_EPOCHS.value,
                steps_per_epoch=_STEPS.value, jit_compile=jit).train_seconds
        measured = seconds[1:] or seconds
        rates = [_STEPS.value * _BATCH.value / s for s in measured]
        name = f"{loop}{'+xla' if jit else ''}"
        results[name] = {"examples_per_s": statistics.median(rates),
                         "examples_per_s_each_epoch": rates}
        logging.info("%s %s: %.0f examples/s", role, name, statistics.median(rates))
    return {"replicas": strategy.num_replicas_in_sync, "chief": distribute.is_chief(strategy),
            "loops": results}


def _passed_flags():
    names = ("epochs", "steps", "batch_size", "features", "depth", "width", "dropout_rate")
    return [f"--{name}={flags.FLAGS[name].value}" for name in names]


def _run_role(role, workdir, processes=1):
    """Runs ``processes`` measuring processes of ``role``; returns the chief's result."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2")
    from selu_zoo.distribute import free_local_ports  # noqa: PLC0415

    addresses = [f"127.0.0.1:{port}" for port in free_local_ports(processes)]
    running = []
    for index in range(processes):
        output = os.path.join(workdir, f"{role}-{index}.json")
        if processes > 1:
            env = {**env, "TF_CONFIG": json.dumps({
                "cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, os.path.abspath(__file__), f"--role={role}",
                   f"--role_output={output}", *_passed_flags()]
        log = open(os.path.join(workdir, f"{role}-{index}.log"), "w")  # noqa: SIM115
        running.append((subprocess.Popen(command, cwd=_ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT), output, log))
    results = []
    try:
        for process, output, log in running:
            code = process.wait(timeout=_TIMEOUT.value)
            log.close()
            if code != 0:
                with open(log.name, encoding="utf-8", errors="replace") as f:
                    raise RuntimeError(f"{role} process failed ({code}):\n{f.read()[-3000:]}")
            with open(output, encoding="utf-8") as f:
                results.append(json.load(f))
    finally:
        for process, _, log in running:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            log.close()
    return next(r for r in results if r["chief"])


def _ratios(results):
    """default throughput / each configuration's, per loop (same loop, same XLA setting)."""
    base = results["default"]["loops"]
    ratios = {}
    for name, result in results.items():
        if name == "default":
            continue
        ratios[name] = {loop: round(base[loop]["examples_per_s"] / r["examples_per_s"], 3)
                        for loop, r in result["loops"].items() if loop in base}
    return ratios


def orchestrate():
    """Measures every configuration one after the other and writes the JSON."""
    import tensorflow as tf  # noqa: PLC0415 (versions only; this process trains nothing)
    import keras  # noqa: PLC0415

    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for role, processes in (("default", 1), ("mirrored", 1), ("multi_worker", 2)):
            start = time.perf_counter()
            results[role] = _run_role(role, workdir, processes)
            results[role]["processes"] = processes
            logging.info("%s done in %.0f s", role, time.perf_counter() - start)
    report = {
        "benchmark": "distribute",
        "what": "global training examples/s of an snn-like MLP: default (1 device) vs "
                "mirrored (2 logical CPU devices, 1 process) vs multi_worker (2 processes on "
                "this machine); overhead = default / configuration (same loop), >1 is slower",
        "model": {"features": _FEATURES.value, "depth": _DEPTH.value, "width": _WIDTH.value,
                  "dropout_rate": _DROPOUT.value, "classes": CLASSES, "optimizer": "SGD"},
        "global_batch_size": _BATCH.value, "steps_per_epoch": _STEPS.value,
        "epochs": _EPOCHS.value, "measured_epochs": max(1, _EPOCHS.value - 1),
        "quick": _QUICK.value,
        "results": results, "overhead_ratio_vs_default": _ratios(results),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    tmp = f"{_OUTPUT.value}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, _OUTPUT.value)
    return report


def _print_table(report):
    print(f"{'strategy':<14}{'loop':<12}{'examples/s':>12}{'overhead':>10}")
    for role, result in report["results"].items():
        for loop, value in result["loops"].items():
            ratio = report["overhead_ratio_vs_default"].get(role, {}).get(loop, 1.0)
            print(f"{role:<14}{loop:<12}{value['examples_per_s']:>12.0f}{ratio:>10.2f}")
    print(f"written to {_OUTPUT.value}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if _ROLE.value is not None:
        result = measure(_ROLE.value)
        with open(_ROLE_OUTPUT.value, "w", encoding="utf-8") as f:
            json.dump(result, f)
        return 0
    if _QUICK.value:
        for flag, value in (("epochs", 2), ("steps", 20)):
            if not flags.FLAGS[flag].present:
                flags.FLAGS[flag].value = value
    _print_table(orchestrate())
    return 0


if __name__ == "__main__":
    app.run(main)
