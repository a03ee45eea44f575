"""Scaling selu_zoo training out with ``tf.distribute``.

- `make_strategy` creates ``default``, ``mirrored`` (local GPUs or N logical CPU devices),
  ``multi_worker`` (``TF_CONFIG``) or ``tpu`` strategies by name.
- `train` is a distributed custom training loop with checkpoints and resume, for the
  strategies where Keras ``fit`` does not work (`uses_keras_fit`).
- `is_chief`, `write_dir`, `chief_first`: who writes what in a multi-worker run.
"""

from selu_zoo.distribute.cluster import barrier
from selu_zoo.distribute.cluster import chief_first
from selu_zoo.distribute.cluster import free_local_ports
from selu_zoo.distribute.cluster import is_chief
from selu_zoo.distribute.cluster import num_workers
from selu_zoo.distribute.cluster import remove_write_dir
from selu_zoo.distribute.cluster import task
from selu_zoo.distribute.cluster import write_dir
from selu_zoo.distribute.inputs import distribute_batches
from selu_zoo.distribute.inputs import per_replica_batch_size
from selu_zoo.distribute.loop import LoopResult
from selu_zoo.distribute.loop import NonFiniteLossError
from selu_zoo.distribute.loop import train
from selu_zoo.distribute.strategies import configure_cpu_devices
from selu_zoo.distribute.strategies import DEFAULT
from selu_zoo.distribute.strategies import make_strategy
from selu_zoo.distribute.strategies import MIRRORED
from selu_zoo.distribute.strategies import MULTI_WORKER
from selu_zoo.distribute.strategies import parse_tf_config
from selu_zoo.distribute.strategies import STRATEGIES
from selu_zoo.distribute.strategies import strategy_name
from selu_zoo.distribute.strategies import TPU
from selu_zoo.distribute.strategies import uses_keras_fit

__all__ = [
    "DEFAULT",
    "LoopResult",
    "MIRRORED",
    "MULTI_WORKER",
    "NonFiniteLossError",
    "STRATEGIES",
    "TPU",
    "barrier",
    "chief_first",
    "configure_cpu_devices",
    "distribute_batches",
    "free_local_ports",
    "is_chief",
    "make_strategy",
    "num_workers",
    "parse_tf_config",
    "per_replica_batch_size",
    "remove_write_dir",
    "strategy_name",
    "task",
    "train",
    "uses_keras_fit",
    "write_dir",
]
