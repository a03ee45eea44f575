"""Who is the chief, and where each worker may write.

In a multi-worker run every worker executes the same program. Files that must exist once
(checkpoints, TensorBoard logs, the best model, exports, metrics) are written by the chief:
the task of type ``chief``, or worker 0 when the cluster has no ``chief`` job. Saving a
checkpoint of mirrored variables is a step every worker takes, so the other workers write
theirs to a private temporary folder and delete it right after (`write_dir`,
`remove_write_dir`).
"""

import posixpath
import socket

import tensorflow as tf
from absl import logging

from selu_zoo import storage


def task(strategy):
    """This process's ``(task_type, task_id)`` from ``strategy``'s cluster resolver
    (``TF_CONFIG``), or ``(None, None)`` outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes the files that must exist once: True outside a cluster,
    for the ``chief`` task, and for worker 0 of a cluster without a ``chief`` job."""
    task_type, task_id = task(strategy)
    if task_type is None or task_type == "chief":
        return True
    if task_type != "worker":
        return False
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return "chief" not in jobs and task_id == 0


def write_dir(directory, strategy):
    """Where this process writes what belongs in ``directory``.

    Args:
      directory: the real destination (the chief's).
      strategy: a ``tf.distribute.Strategy``.

    Returns:
      ``directory`` on the chief; on another worker a private temporary folder beside it,
      ``<parent>/.worker-tmp/<task_type>-<task_id>/<name>``, to be removed with
      `remove_write_dir` once written.
    """
    if is_chief(strategy):
        return directory
    task_type, task_id = task(strategy)
    parent, name = posixpath.split(str(directory).rstrip("/"))
    return storage.join(parent, ".worker-tmp", f"{task_type}-{task_id}", name)


def remove_write_dir(directory, strategy):
    """Deletes a non-chief worker's temporary folder `write_dir` gave for ``directory``;
    a no-op on the chief."""
    if is_chief(strategy):
        return
    private = write_dir(directory, strategy)
    storage.remove_tree(posixpath.dirname(private))
    shared = posixpath.dirname(posixpath.dirname(private))
    if not storage.listdir(shared):  # the shared .worker-tmp folder, once the last worker left
        storage.remove_tree(shared)
    logging.debug("removed the worker's temporary copy %s", private)


def num_workers(strategy):
    """The number of ``chief`` and ``worker`` tasks of ``strategy``'s cluster (1 outside one)."""
    if task(strategy)[0] is None:
        return 1
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(1, sum(len(jobs.get(job, ())) for job in ("chief", "worker")))


def barrier(strategy):
    """Returns once every worker of ``strategy`` called it (an all-reduce of one number)."""
    if num_workers(strategy) == 1:
        return

    @tf.function
    def all_reduce():
        ones = strategy.run(lambda: tf.constant(1, tf.int32))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

    all_reduce()


def chief_first(strategy, fn):
    """Runs ``fn()`` on the chief, then (after a `barrier`) on the other workers.

    For work that writes shared state on first use, such as preparing a dataset in a
    ``data_dir`` that several workers on one machine share: the chief prepares, the others
    find it prepared.

    Args:
      strategy: a ``tf.distribute.Strategy``.
      fn: a function of no arguments; every worker calls it once.

    Returns:
      What ``fn`` returned on this worker.
    """
    if num_workers(strategy) == 1:
        return fn()
    chief = is_chief(strategy)
    result = fn() if chief else None
    barrier(strategy)
    return result if chief else fn()


def free_local_ports(count):
    """``count`` distinct TCP ports free on 127.0.0.1 now (another process may take one
    later), for a cluster tried on one machine."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
