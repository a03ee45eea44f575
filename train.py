r"""Train a selu_zoo model and export it.

    python train.py --model=snn_vae
    python train.py --model=snn --config.dataset=digits --config.epochs=20
    python train.py --model=snn --config.dataset=csv:HTRU_2.csv --config.label_column=8
    python train.py --model=snn_cnn --config=configs/snn_cnn.py --workdir=/tmp/cnn

The experiment (dataset, epochs, batch size, learning rate, seed, jit_compile, mixed
precision, model hyperparameters) lives in the config, ``configs/<model>.py`` by default;
override any field with ``--config.<field>=value``. A workdir holds one run: run the same
command again after an interruption and training resumes from the last finished epoch; a
different config in a used workdir is refused (``--restart`` starts over).

Artifacts: ``<workdir>/`` holds the config, checkpoints, TensorBoard logs, pictures and
``metrics.json``; ``<export_dir>/<model>/<version>/`` holds the SavedModel and, in its
``assets.extra/``, the ``.keras`` file, the TFLite files and the export report.

Scale out with ``--strategy``:

    python train.py --model=snn --strategy=mirrored                       # every local GPU
    python train.py --model=snn --strategy=mirrored --num_cpu_devices=2   # 2 logical CPUs
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' \
        python train.py --model=snn --strategy=multi_worker --workdir=/shared/run1
    python train.py --model=snn --strategy=tpu --tpu=my-tpu

``config.batch_size`` is the global batch (split among the replicas; the learning rate is not
scaled). In a multi-worker cluster every worker runs the same command with its own
``TF_CONFIG``; the chief (worker 0) alone writes checkpoints, logs, metrics and exports, so
``--workdir`` must be a folder every worker can read (shared storage) for resuming.
"""

import difflib
import importlib.util
import os
import sys


def _load_console():
    """``selu_zoo.console`` without running ``selu_zoo/__init__.py``, which imports TensorFlow
    (``import selu_zoo`` later finds this same module)."""
    if "selu_zoo.console" not in sys.modules:
        spec = importlib.util.spec_from_file_location("selu_zoo.console", os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "selu_zoo", "console.py"))
        sys.modules["selu_zoo.console"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["selu_zoo.console"])
    return sys.modules["selu_zoo.console"]


console = _load_console()
# Before TensorFlow is imported: its C++ start-up lines go to a file, not the console.
NATIVE_STDERR = console.NativeStderr() if __name__ == "__main__" else None

import keras  # noqa: E402  (reads KERAS_BACKEND)

if __name__ == "__main__" and keras.backend.backend() != "tensorflow":
    sys.stderr.write(
        f"train.py: error: train.py needs the TensorFlow Keras backend, got KERAS_BACKEND="
        f"{keras.backend.backend()}; run it with KERAS_BACKEND=tensorflow (selu_zoo's layers "
        "and models run on jax and torch too: load the exported .keras file there)\n")
    sys.exit(2)

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import training  # noqa: E402
from configs import validation  # noqa: E402
from models import registry  # noqa: E402
from selu_zoo import distribute, ops, storage  # noqa: E402
from selu_zoo.export import flags as export_flags  # noqa: E402
from selu_zoo.export import models_config  # noqa: E402

_PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


def _model_from_argv(argv):
    """The value of --model in ``argv`` (before absl parses it), or the flag's default."""
    for i, arg in enumerate(argv):
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
    return "snn_vae"


def _default_config_path(argv):
    """``configs/<model>.py`` for the --model in argv, so ``--config.x=y`` works without --config."""
    model = _model_from_argv(argv)
    return os.path.join(_PROJECT_DIR, "configs", f"{model}.py") \
        if model in registry.MODEL_NAMES else None


def _config_path(argv):
    """The config file that ``argv`` names with --config, else the model's default."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":")[0]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1].split(":")[0]
    return _default_config_path(argv)


def _unknown_field(argv):
    """The one-line error for a --config.<field> that the config file does not have.

    ml_collections raises a bare AttributeError or KeyError for it, when the --config flag is
    defined (the default file) or parsed (a file named with --config).
    """
    path = _config_path(argv)
    try:
        spec = importlib.util.spec_from_file_location("_selu_zoo_config", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        known = sorted(module.get_config().keys())
    except Exception:  # noqa: BLE001 - a broken file gets its own error from the flag parser
        return f"a --config.<field> override does not fit {path}"
    fields = [arg.split("=")[0][len("--config."):] for arg in argv if arg.startswith("--config.")]
    field = next((f for f in fields if f.split(".")[0] not in known), "?")
    close = difflib.get_close_matches(field, known, n=3)
    return (f"unknown config field {field!r} in {os.path.basename(path)}"
            + (f"; did you mean {', '.join(close)}?" if close else f"; fields: {', '.join(known)}"))


def _fail(message, code=EXIT_USAGE):
    """Prints one ``train.py: error:`` line to stderr and exits with ``code``."""
    sys.stderr.write(f"train.py: error: {' '.join(str(message).split())}\n")
    sys.stderr.flush()
    sys.exit(code)


_MODEL = flags.DEFINE_enum("model", "snn_vae", registry.MODEL_NAMES,
                           "Model to train; its default config is configs/<model>.py.")
try:
    _CONFIG = config_flags.DEFINE_config_file(
        "config", _default_config_path(sys.argv),
        "ml_collections config file (default: configs/<model>.py). Override any field with "
        "--config.<field>=value.", lock_config=True)
except (AttributeError, KeyError):  # an unknown --config.<field> of the default config file
    _fail(_unknown_field(sys.argv))
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Folder of the run (config, checkpoints, TensorBoard logs, pictures, "
    "metrics.json); any tf.io.gfile path. Default: workdir/<model>.")
_RESTART = flags.DEFINE_bool(
    "restart", False, "Delete the run already in --workdir (its checkpoints, logs and "
    "metrics) and start over; without it a different config there is refused.")
_EXPORT = flags.DEFINE_bool("export", True, "Export the trained model at the end.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "saved_models", "Serving base folder: <export_dir>/<name>/<version>/ and "
    "<export_dir>/models.config; any tf.io.gfile path.")
_EXPORT_NAME = flags.DEFINE_string(
    "export_name", None, "The model's folder under --export_dir and its TF Serving name "
    "(default: --model).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "TFDS data folder, where datasets are prepared; any tf.io.gfile path. "
    "Default: TFDS's ($TFDS_DATA_DIR or ~/tensorflow_datasets).")
_DOWNLOAD = flags.DEFINE_bool(
    "download", True, "Download a TFDS catalog dataset that is not prepared in --data_dir. "
    "Embedded and CSV datasets never download.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", list(distribute.STRATEGIES),
    "tf.distribute strategy: 'default' (one device), 'mirrored' (all local GPUs, or "
    "--num_cpu_devices logical CPUs), 'multi_worker' (MultiWorkerMirroredStrategy; the cluster "
    "from TF_CONFIG), 'tpu' (TPUStrategy on --tpu).")
_NUM_CPU_DEVICES = flags.DEFINE_integer(
    "num_cpu_devices", None, "With --strategy=mirrored: replicate over this many logical CPU "
    "devices instead of the GPUs (to try data parallelism on a CPU).", lower_bound=1)
_TPU = flags.DEFINE_string(
    "tpu", None, "With --strategy=tpu: TPU name or grpc:// address (default: $TPU_NAME, else "
    "the local TPU VM).")
_LOOP = flags.DEFINE_enum(
    "loop", "auto", list(training.LOOPS), "Training loop: 'auto' uses Keras fit where it "
    "works under the strategy and the distributed custom loop elsewhere (multi_worker; "
    "mirrored with config.jit_compile).")


def _parse_flags(argv):
    """absl flag parsing whose errors (including config files that fail to load) are one line."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError):
        _fail(_unknown_field(argv))
    except (flags.Error, OSError, SyntaxError, ValueError) as error:
        _fail(error)


def _summary(result):
    """The lines of the final summary: test metrics, then where every artifact is."""
    metrics = result["metrics"]
    test = ", ".join(f"{name} {value:.4f}" for name, value in metrics["test"].items())
    version = metrics["exported_version"]
    exported = "already exported" if result.get("finished") else "exported"
    lines = [f"{metrics['model']} on {metrics['dataset']}: test {test} (best epoch "
             f"{metrics['best_epoch']}, {metrics['wall_time_s']:.0f} s"
             + (f", {exported} as version {version})" if version else ")")]
    lines += [f"  {name:<16} {path}" for name, path in result["artifacts"].items()]
    return lines


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected argument {argv[1]!r}: flags start with --, e.g. --config.epochs=5")
    verbose = logging.get_verbosity() > logging.INFO
    console.configure_logging(logging, verbose)
    if verbose and NATIVE_STDERR is not None:
        NATIVE_STDERR.release()
    tfds.display_progress_bar(verbose)
    tf.get_logger().setLevel("INFO" if verbose else "ERROR")
    model_name = _MODEL.value
    workdir = _WORKDIR.value or storage.join("workdir", model_name)
    new_workdir = not storage.exists(workdir)
    export = None
    try:
        if _CONFIG.value is None:
            raise validation.ConfigError(f"no config for --model={model_name}; pass --config")
        config = _CONFIG.value
        validation.validate(config, model_name)
        # Logical CPU devices and the cluster must be set up before TF creates tensors.
        strategy = distribute.make_strategy(_STRATEGY.value, num_cpu_devices=_NUM_CPU_DEVICES.value,
                                            tpu=_TPU.value)
        storage.check_writable(workdir, "--workdir")
        if _EXPORT.value:
            storage.check_writable(_EXPORT_DIR.value, "--export_dir")
            models_config.check_models_config(_EXPORT_DIR.value)
            export = training.ExportOptions(
                _EXPORT_DIR.value, _EXPORT_NAME.value or model_name,
                **export_flags.export_options())
        result = training.train_and_evaluate(
            config, workdir, export_options=export, data_dir=_DATA_DIR.value,
            download=_DOWNLOAD.value, strategy=strategy, loop=_LOOP.value,
            restart=_RESTART.value)
    except training.Interrupted as interrupted:
        _fail(interrupted, EXIT_INTERRUPTED)
    except (ValueError, OSError) as error:  # bad input: config, data, paths, storage
        if verbose:
            raise
        _fail(error)
    except (RuntimeError, tf.errors.OpError) as error:
        if verbose:
            raise
        if isinstance(error, tf.errors.UnavailableError) and \
                _STRATEGY.value == distribute.MULTI_WORKER:
            _fail("another worker of the cluster failed or cannot be reached "
                  "(UnavailableError); restart every worker with the same command: training "
                  "resumes from the chief's last checkpoint", EXIT_FAILED)
        if NATIVE_STDERR is not None:
            sys.stderr.write("TensorFlow's own output before the error:\n"
                             + NATIVE_STDERR.text(4000))
        message = error.message if isinstance(error, tf.errors.OpError) else str(error)
        _fail(f"{type(error).__name__}: {message.strip().splitlines()[0]}", EXIT_FAILED)
    finally:
        if new_workdir and storage.exists(workdir) and not storage.listdir(workdir):
            storage.remove_tree(workdir)  # a run that failed before writing leaves no trace
    if result["metrics"] is not None:
        print("\n".join(_summary(result)), flush=True)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
