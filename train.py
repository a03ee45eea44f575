r"""Train a selu_zoo model on an embedded (offline) dataset and export it.

    python train.py --model=snn_vae
    python train.py --model=snn --config.dataset=digits --config.epochs=20
    python train.py --model=snn_cnn --config=configs/snn_cnn.py --workdir=/tmp/cnn

The experiment (dataset, epochs, batch size, learning rate, seed, jit_compile, mixed precision,
model hyperparameters) lives in the config, ``configs/<model>.py`` by default; override any
field with ``--config.<field>=value``. Run the same command again after an interruption and
training resumes from the last finished epoch.

Artifacts: ``<workdir>/`` holds logs (TensorBoard), the best checkpoint, the resume backup and
``metrics.json``; ``<export_dir>/<model>/`` holds the SavedModel versions, the ``.keras`` file
and the TFLite files.

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

import os
import sys

import tensorflow as tf
from absl import app, flags, logging
from ml_collections import config_flags

from models import registry
from selu_zoo import distribute
from training import LOOPS, train_and_evaluate

_PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))


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
    path = os.path.join(_PROJECT_DIR, "configs", f"{model}.py")
    return path if model in registry.MODEL_NAMES else None


_MODEL = flags.DEFINE_enum("model", "snn_vae", registry.MODEL_NAMES,
                           "Model to train; its default config is configs/<model>.py.")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _default_config_path(sys.argv),
    "ml_collections config file (default: configs/<model>.py). Override any field with "
    "--config.<field>=value.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Folder for checkpoints, TensorBoard logs, the resume backup and "
    "metrics.json. Default: workdir/<model> in the current folder.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "saved_models", "Where exports go: <export_dir>/<model>/<version>/ "
    "(SavedModel), <model>.keras and <model>.tflite.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "TFDS data folder. Embedded datasets are prepared there on first use; "
    "catalog datasets must already be prepared there. Default: TFDS's default.")
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
    "loop", "auto", list(LOOPS), "Training loop: 'auto' uses Keras fit where it works under "
    "the strategy and the distributed custom loop elsewhere (multi_worker; mirrored with "
    "config.jit_compile).")
_KEEP_VERSIONS = flags.DEFINE_integer(
    "keep_versions", 5, "SavedModel versions to keep per model (the newest is always kept).",
    lower_bound=1)
_SERVING_BASE_PATH = flags.DEFINE_string(
    "serving_base_path", None, "Folder that holds the exports as TensorFlow Serving sees it "
    "(e.g. /models inside a container), for the base_path entries of "
    "<export_dir>/models.config. Default: the absolute path of --export_dir.")
_EXPORT = flags.DEFINE_bool("export", True, "Export the trained model at the end.")


def _positive_int(config, field):
    value = config.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"config.{field} must be a positive integer, got {value!r}")


def validate_config(config, model_name):
    """Checks the fields train.py relies on; raises ValueError with a one-line message.

    Args:
      config: the experiment ConfigDict.
      model_name: the --model value.

    Raises:
      ValueError: naming the bad field, its value and what is allowed.
    """
    if config.get("model", model_name) != model_name:
        raise ValueError(f"config.model is {config.model!r} but --model is {model_name!r}")
    _positive_int(config, "epochs")
    _positive_int(config, "batch_size")
    if config.get("steps_per_epoch") is not None:
        _positive_int(config, "steps_per_epoch")
    rate = config.get("learning_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"config.learning_rate must be a positive number, got {rate!r}")


def prepare_output_dirs(workdir, export_dir):
    """Creates ``workdir`` and checks that ``export_dir`` can hold exports, before training.

    Args:
      workdir: run folder (created).
      export_dir: export root (created only at export time; checked here).

    Raises:
      ValueError: if export_dir or workdir is an existing file.
      PermissionError: if a folder cannot be created or written.
    """
    for name, path in (("--workdir", workdir), ("--export_dir", export_dir)):
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"{name}={path} is a file; pass a folder")
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise PermissionError(
            f"--workdir={workdir} is not writable ({error.strerror})") from None
    existing = os.path.abspath(export_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        raise PermissionError(f"--export_dir={export_dir} is not writable ({existing})")


def _fail(message):
    """Prints one ``train.py: error:`` line to stderr and exits with status 2."""
    print(f"train.py: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


def _parse_flags(argv):
    """absl flag parsing whose errors (including config files that fail to load) are one line."""
    try:
        return flags.FLAGS(argv)
    except (flags.Error, OSError, SyntaxError, ValueError, AttributeError) as error:
        _fail(error)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    model_name = _MODEL.value
    workdir = _WORKDIR.value or os.path.join("workdir", model_name)
    try:
        if _CONFIG.value is None:
            raise ValueError(f"no config for --model={model_name}; pass --config")
        validate_config(_CONFIG.value, model_name)
        # First: logical CPU devices and the cluster must be set up before TF creates tensors.
        strategy = distribute.make_strategy(
            _STRATEGY.value, num_cpu_devices=_NUM_CPU_DEVICES.value, tpu=_TPU.value)
        prepare_output_dirs(workdir, _EXPORT_DIR.value)
        train_and_evaluate(
            _CONFIG.value, model_name=model_name, workdir=workdir,
            export_dir=_EXPORT_DIR.value if _EXPORT.value else None,
            data_dir=_DATA_DIR.value, keep_versions=_KEEP_VERSIONS.value,
            serving_base_path=_SERVING_BASE_PATH.value, strategy=strategy, loop=_LOOP.value)
    except (ValueError, OSError, RuntimeError) as error:
        if logging.get_verbosity() > logging.INFO:  # --verbosity=1 or more: show the traceback
            raise
        _fail(error)
    except tf.errors.OpError as error:  # e.g. UnavailableError: another worker of the cluster died
        if logging.get_verbosity() > logging.INFO:
            raise
        if (isinstance(error, tf.errors.UnavailableError)
                and _STRATEGY.value == distribute.MULTI_WORKER):
            _fail("another worker of the cluster failed or cannot be reached "
                  "(UnavailableError); restart every worker with the same command: training "
                  "resumes from the chief's last checkpoint")
        lines = [line for line in str(error.message).splitlines() if line.strip()]
        _fail(f"{type(error).__name__}: {lines[0] if lines else ''}")
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
