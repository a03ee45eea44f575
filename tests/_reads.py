"""`ReadCounter`: counts the examples read from each split's files, for the data tests."""

import tensorflow as tf

from selu_zoo.datasets import SPLITS, sources


class ReadCounter:
    """Counts the examples `Source.read_batches` yields, per split, in tf.Variables.

    `Source.read_batches` is the one place that reads a split's files. With ``limit``, a
    read past that many examples of a split raises ``InvalidArgumentError``, so that a
    regression reading a whole huge split fails within seconds instead of hanging.
    """

    def __init__(self, monkeypatch, limit=None):
        self.variables = {split: tf.Variable(0, dtype=tf.int64, trainable=False)
                          for split in SPLITS}
        original, variables = sources.Source.read_batches, self.variables

        def counting_read(source, split):
            variable = variables[split]

            def count(features, labels):
                seen = variable.assign_add(tf.shape(labels, out_type=tf.int64)[0])
                checks = [] if limit is None else [tf.debugging.assert_less_equal(
                    seen, tf.constant(limit, tf.int64),
                    message=f"more than {limit} examples read from {split}")]
                with tf.control_dependencies([seen, *checks]):
                    return tf.identity(features), tf.identity(labels)

            return original(source, split).map(count)

        monkeypatch.setattr(sources.Source, "read_batches", counting_read)

    def __getitem__(self, split):
        return int(self.variables[split].numpy())

    def counts(self):
        return {split: self[split] for split in SPLITS}

    def reset(self):
        for variable in self.variables.values():
            variable.assign(0)
