"""Input pipelines for a distributed custom loop: each replica its contiguous slice."""

import tensorflow as tf


def per_replica_batch_size(strategy, global_batch_size):
    """The batch each replica computes on: ``global_batch_size / num_replicas_in_sync``.

    Raises:
      ValueError: if the global batch does not divide evenly among the replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if (isinstance(global_batch_size, bool) or not isinstance(global_batch_size, int)
            or global_batch_size <= 0 or global_batch_size % replicas):
        raise ValueError(f"batch_size {global_batch_size!r} must be a positive multiple of the "
                         f"{replicas} replica(s) in sync")
    return global_batch_size // replicas


def distribute_batches(strategy, batches, global_batch_size):
    """Splits a dataset of global batches among the replicas for ``strategy.run``.

    Replica ``i`` (``replica_id_in_sync_group``) gets rows ``[i * b, (i + 1) * b)`` of every
    global batch, ``b`` the per-replica batch size: the slice whose global example indices
    its alpha-dropout masks are keyed by (`selu_zoo.ops.masks`), so N replicas train as one
    device does up to the order of floating-point sums. Every worker reads the whole stream
    (same seeds, same order) and keeps its slice; a last, partial global batch leaves some
    replicas a smaller or empty batch.

    Args:
      strategy: a ``tf.distribute.Strategy``.
      batches: a ``tf.data.Dataset`` of global batches, the same on every worker.
      global_batch_size: the size of its full batches.

    Returns:
      A ``tf.distribute.DistributedDataset``.

    Raises:
      ValueError: if the global batch does not divide evenly among the replicas.
    """
    per_replica = per_replica_batch_size(strategy, global_batch_size)

    def dataset_fn(context):
        local = global_batch_size // context.num_input_pipelines  # this worker's replicas
        start = context.input_pipeline_id * local

        def worker_slice(*batch):
            rows = tf.nest.map_structure(lambda t: t[start:start + local], batch)
            return rows if len(rows) > 1 else rows[0]

        mine = batches.map(worker_slice) if context.num_input_pipelines > 1 else batches
        return mine.rebatch(per_replica).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)
