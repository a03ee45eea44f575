"""Scaling selu_zoo training out with ``tf.distribute``.

- `make_strategy` creates ``default``, ``mirrored`` (local GPUs or N logical CPU devices),
  ``multi_worker`` (``TF_CONFIG``) or ``tpu`` strategies by name.
- `train` is a distributed custom training loop with checkpoints and resume, for the
  strategies where Keras ``fit`` does not work (`uses_keras_fit`).
- `is_chief`, `write_dir`, `chief_first`: who writes what in a multi-worker run.
"""

from selu_zoo.distribute.cluster import (barrier, chief_first, free_local_ports, is_chief,
                                         num_workers, remove_write_dir, task, write_dir)
from selu_zoo.distribute.inputs import distribute_batches, per_replica_batch_size
from selu_zoo.distribute.loop import LoopResult, NonFiniteLossError, train
from selu_zoo.distribute.strategies import (DEFAULT, MIRRORED, MULTI_WORKER, STRATEGIES, TPU,
                                            configure_cpu_devices, make_strategy,
                                            parse_tf_config, strategy_name, uses_keras_fit)
