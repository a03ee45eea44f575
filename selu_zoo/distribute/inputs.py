"""Input pipelines for a distributed custom loop: per-replica batches, per-worker shards."""

import tensorflow as tf


def per_replica_batch_size(strategy, global_batch_size):
    """The batch each replica computes on: ``global_batch_size / num_replicas_in_sync``.

    Args:
      strategy: a ``tf.distribute.Strategy``.
      global_batch_size: examples per optimizer step, summed over all replicas.

    Returns:
      The per-replica batch size, an int.

    Raises:
      ValueError: if the global batch does not divide evenly among the replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if (isinstance(global_batch_size, bool) or not isinstance(global_batch_size, int)
            or global_batch_size <= 0 or global_batch_size % replicas):
        raise ValueError(f"batch_size {global_batch_size!r} must be a positive multiple of the "
                         f"{replicas} replica(s) in sync")
    return global_batch_size // replicas


def distribute_examples(strategy, examples, global_batch_size, *, repeat):
    """Batches and shards a dataset of single examples for ``strategy.run``.

    Every worker builds the same stream of examples (same seeds, so the same shuffled order),
    batches it into per-replica batches and keeps every ``num_input_pipelines``-th batch,
    starting at its own pipeline id; its local replicas take consecutive kept batches. One
    step therefore consumes ``global_batch_size`` consecutive examples of the stream, exactly
    the batch a single device would take: training under ``mirrored`` and ``multi_worker``
    matches ``default`` up to the order of floating-point sums. (Each worker reads the whole
    stream, which costs little for in-memory datasets; shard by files for large ones.)

    Args:
      strategy: a ``tf.distribute.Strategy``.
      examples: a ``tf.data.Dataset`` of single (unbatched) examples, e.g. ``(x, y)`` pairs,
        already shuffled (with a fixed seed: every worker must see the same order).
      global_batch_size: examples per step over all replicas.
      repeat: True for training: repeat forever and drop partial batches, so that every
        replica of every worker gets a full batch at every step (the caller counts steps).
        False for evaluation: one pass; the last batches may be partial or empty on some
        replicas, which the evaluation weights by their size.

    Returns:
      A ``tf.distribute.DistributedDataset``.

    Raises:
      ValueError: if the global batch does not divide evenly among the replicas.
    """
    per_replica_batch_size(strategy, global_batch_size)

    def dataset_fn(context):
        batch = context.get_per_replica_batch_size(global_batch_size)
        dataset = examples.repeat() if repeat else examples
        dataset = dataset.batch(batch, drop_remainder=repeat)
        if context.num_input_pipelines > 1:
            dataset = dataset.shard(context.num_input_pipelines, context.input_pipeline_id)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)
