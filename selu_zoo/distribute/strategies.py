"""Creating a ``tf.distribute`` strategy by name.

Names (`STRATEGIES`):

- ``default``: TensorFlow's default strategy, one device (the first GPU if there is one).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU, or over
  ``num_cpu_devices`` logical CPU devices (for trying data parallelism on a CPU-only machine).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, one process per worker,
  the cluster and this process's place in it read from the ``TF_CONFIG`` environment variable.
- ``tpu``: ``tf.distribute.TPUStrategy`` on the TPU named by ``tpu`` (or ``TPU_NAME``, or the
  local TPU VM); fails with a one-line `RuntimeError` where no TPU can be reached.

Logical CPU devices must be configured before TensorFlow initializes its devices, that is
before the first tensor is created: call `make_strategy` (or `configure_cpu_devices`) early.
"""

import json
import os

import tensorflow as tf
from absl import logging

DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
TPU = "tpu"
STRATEGIES = (DEFAULT, MIRRORED, MULTI_WORKER, TPU)


def configure_cpu_devices(num_devices):
    """Splits the physical CPU into ``num_devices`` logical devices; returns their names.

    Calling it again with the same number after TensorFlow initialized its devices is fine.

    Raises:
      ValueError: for a bad ``num_devices``.
      RuntimeError: if TensorFlow already initialized its devices with another number.
    """
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"num_cpu_devices must be a positive int, got {num_devices!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if len(current or [None]) != num_devices:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
        except RuntimeError:
            raise RuntimeError(
                f"cannot split the CPU into {num_devices} logical devices: TensorFlow already "
                "initialized its devices (configure them before creating any tensor)") from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def parse_tf_config(environ=None):
    """The parsed ``TF_CONFIG`` of ``environ`` (default ``os.environ``), its ``cluster`` and
    ``task`` checked; None if it is unset.

    Raises:
      ValueError: one line naming what is wrong with a set ``TF_CONFIG``.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError('TF_CONFIG needs a "cluster" object, e.g. '
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}')
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(f'TF_CONFIG "task" must name a job of the cluster '
                         f'({", ".join(cluster)}), got {task!r}')
    index = task.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or not (
            0 <= index < len(cluster[task["type"]])):
        raise ValueError(f'TF_CONFIG task index {index!r} is not in the '
                         f'{len(cluster[task["type"]])} "{task["type"]}" addresses')
    return config


def _mirrored(num_cpu_devices):
    if num_cpu_devices is not None:
        devices = configure_cpu_devices(num_cpu_devices)
        return tf.distribute.MirroredStrategy(devices=devices)
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        logging.warning("--strategy=mirrored found no GPU: one replica on the CPU; pass "
                        "--num_cpu_devices=N to try N replicas on logical CPU devices")
    return tf.distribute.MirroredStrategy()


def _multi_worker():
    config = parse_tf_config()
    if config is None:
        logging.warning("--strategy=multi_worker without TF_CONFIG: a cluster of one worker")
    else:
        logging.info("multi_worker: task %s of cluster %s", config["task"],
                     json.dumps(config["cluster"]))
    communication = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication)


def _first_line(error, limit=160):
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."


def strategy_name(strategy):
    """The public class name of ``strategy`` (``MultiWorkerMirroredStrategy``, not its alias;
    ``"default"`` for the default strategy)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "default"
    return type(strategy).__name__


def _tpu(tpu):
    address = tpu or os.environ.get("TPU_NAME") or "local"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        if address != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise RuntimeError(f"--strategy=tpu: no TPU reachable at {address!r} "
                           f"({_first_line(error)})") from None


def make_strategy(name, num_cpu_devices=None, tpu=None):
    """Creates the strategy ``name`` (see the module docstring).

    Args:
      name: one of `STRATEGIES`.
      num_cpu_devices: for ``mirrored`` only: replicate over this many logical CPU devices
        instead of the GPUs (must be set before TensorFlow initializes its devices).
      tpu: for ``tpu`` only: the TPU name or ``grpc://`` address; default ``TPU_NAME`` or the
        local TPU VM.

    Returns:
      A ``tf.distribute.Strategy``.

    Raises:
      ValueError: for an unknown name, a bad ``TF_CONFIG`` or an option the strategy does not
        take.
      RuntimeError: if the devices asked for cannot be had (no TPU; CPU devices already
        initialized).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if num_cpu_devices is not None and name != MIRRORED:
        raise ValueError(f"num_cpu_devices is for --strategy=mirrored, not {name!r}")
    if tpu is not None and name != TPU:
        raise ValueError(f"a TPU address is for --strategy=tpu, not {name!r}")
    if name == DEFAULT:
        strategy = tf.distribute.get_strategy()
    elif name == MIRRORED:
        strategy = _mirrored(num_cpu_devices)
    elif name == MULTI_WORKER:
        strategy = _multi_worker()
    else:
        strategy = _tpu(tpu)
    logging.debug("strategy %s: %s with %d replica(s)", name, strategy_name(strategy),
                 strategy.num_replicas_in_sync)
    return strategy


def uses_keras_fit(strategy, jit_compile=False):
    """Whether Keras ``fit`` trains correctly under ``strategy``.

    Seen with Keras 3.15 / TF 2.21 (CPU; the second is keras-team/keras#19005, also reported
    on GPUs in keras-team/keras#18145):

    - under ``MultiWorkerMirroredStrategy`` ``fit`` fails before the first step: its symbolic
      build reduces the first input batch with ``strategy.reduce``, which raises
      "ValueError: Attempt to convert a value (PerReplica:{...}) with an unsupported type";
    - with ``jit_compile=True`` and more than one replica (``MirroredStrategy``), ``fit``
      compiles the whole replicated step as one XLA cluster and fails with
      "InvalidArgumentError: Trying to access resource .../replica_1/... located in device
      CPU:1 from device CPU:0".

    `selu_zoo.distribute.loop` trains in both cases (it compiles each replica's step apart).

    Args:
      strategy: a ``tf.distribute.Strategy``.
      jit_compile: whether the model is compiled with ``jit_compile=True``.

    Returns:
      False in the two cases above, True otherwise (TPUStrategy included).
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    if jit_compile and strategy.num_replicas_in_sync > 1 and not isinstance(
            strategy, tf.distribute.TPUStrategy):
        return False
    return True
