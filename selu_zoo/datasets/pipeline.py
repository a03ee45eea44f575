"""`open_dataset`: one call gives a dataset's info and its splits as tf.data pipelines.

Counts come from the builder's info and train statistics are remembered beside the prepared
data, so describing a dataset reads no rows. A split up to `CACHE_LIMIT_BYTES` (decoded) is
cached in memory by its first pass; a larger one streams from disk at every pass.
Pipelines yield ``(features, label)``, not standardized: `DatasetInfo` carries the train
split's statistics for the model's own ``keras.layers.Normalization``.
"""

import dataclasses
import math
import numbers

import numpy as np
import tensorflow as tf

from selu_zoo.datasets import sources, statistics

TRAIN, VALIDATION, TEST = sources.TRAIN, sources.VALIDATION, sources.TEST
SPLITS = (TRAIN, VALIDATION, TEST)
# Splits up to this size (decoded features and labels) are cached in memory.
CACHE_LIMIT_BYTES = 32 * 2**20
# Bound of the train shuffle buffer, in bytes of decoded examples (and at most 100,000).
SHUFFLE_BUFFER_BYTES = 64 * 2**20
# Shuffle seeds of a run's epochs: shuffle_seed * _EPOCH_SEEDS + epoch, distinct per epoch.
_EPOCH_SEEDS = 2**31
_READ_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Attributes:
      name: the dataset name as given.
      task: ``"classification"`` or ``"regression"``.
      num_classes, label_names: classes and their names; None for regression.
      feature_names: names of tabular features (CSV columns); None otherwise.
      feature_shape: shape of one example's features.
      num_examples: split name -> number of examples.
      mean, variance: per-feature float32 train-split mean and population variance, of
        shape ``feature_shape``.
      label_mean, label_variance: of the train targets (regression; 0 and 1 otherwise).
    """

    name: str
    task: str
    num_classes: int | None
    label_names: tuple | None
    feature_names: tuple | None
    feature_shape: tuple
    num_examples: dict
    mean: np.ndarray
    variance: np.ndarray
    label_mean: float = 0.0
    label_variance: float = 1.0


def _check_feature_shape(source, feature_shape):
    stored = source.stored_shape
    if feature_shape is None:
        return stored
    try:
        dims = tuple(feature_shape)
    except TypeError:
        dims = ()
    valid = dims and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
                         for d in dims)
    if not valid or math.prod(dims) != math.prod(stored):
        raise ValueError(
            f"config.feature_shape {feature_shape!r} does not fit dataset {source.name!r}, "
            f"whose examples hold {math.prod(stored)} values (stored shape {stored})")
    return tuple(int(d) for d in dims)


def _frozen(array, shape):
    result = np.array(array, dtype=np.float32).reshape(shape)
    result.setflags(write=False)
    return result


class Dataset:
    """An opened dataset: `info` and its splits (use `open_dataset`).

    Args:
      source: a prepared `selu_zoo.datasets.sources.Source`.
      feature_shape: as for `open_dataset`.
      cache_limit_bytes: splits up to this many decoded bytes are cached in memory; None
        for `CACHE_LIMIT_BYTES`, 0 to stream every split.
    """

    def __init__(self, source, feature_shape=None, cache_limit_bytes=None):
        self.source = source
        self._cache_limit = CACHE_LIMIT_BYTES if cache_limit_bytes is None \
            else cache_limit_bytes
        self._shape = _check_feature_shape(source, feature_shape)
        self._counts = {split: source.num_examples(split) for split in SPLITS}
        self._examples = {}
        self._filled = set()
        moments = statistics.train_moments(self.examples(TRAIN), source.builder.data_dir,
                                           source.split_specs[TRAIN])
        if self._counts[TRAIN] is None:  # mocked catalog data has no split info
            self._counts[TRAIN] = moments.count
        regression = source.task == sources.REGRESSION
        self.info = DatasetInfo(
            name=source.name, task=source.task, num_classes=source.num_classes,
            label_names=source.label_names, feature_names=source.feature_names,
            feature_shape=self._shape, num_examples=dict(self._counts),
            mean=_frozen(moments.mean, self._shape),
            variance=_frozen(moments.variance, self._shape),
            label_mean=moments.label_mean if regression else 0.0,
            label_variance=moments.label_variance if regression else 1.0)

    def _example_bytes(self):
        return 4 * math.prod(self._shape) + 8

    def cached(self, split):
        """Whether a split is small enough to be cached in memory (the cache limit)."""
        count = self._counts[split]
        return count is not None and count * self._example_bytes() <= self._cache_limit

    def _convert(self, features, label):
        if self.source.image and features.dtype.is_integer:
            features = tf.cast(features, tf.float32) / features.dtype.max
        else:
            features = tf.cast(features, tf.float32)
        regression = self.source.task == sources.REGRESSION
        return (tf.reshape(features, (-1, *self._shape)),
                tf.cast(label, tf.float32 if regression else tf.int64))

    def examples(self, split):
        """One split's ``(features, label)`` examples, unbatched, in the stored order: always
        the same ``tf.data.Dataset`` for a split, so its memory cache is filled once."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self._examples:
            # Converted and cached in batches: a call per example costs more than reading it,
            # and a cache's overhead per element is several times a small row's data.
            examples = self.source.read_batches(split).map(
                self._convert, num_parallel_calls=tf.data.AUTOTUNE)
            if self.cached(split):
                examples = examples.cache()
            examples = examples.unbatch()
            if self._counts[split] is not None:
                examples = examples.apply(
                    tf.data.experimental.assert_cardinality(self._counts[split]))
            self._examples[split] = examples
        return self._examples[split]

    def batches(self, split, batch_size, *, shuffle_seed=None, repeat=False,
                drop_remainder=False, map_fn=None, epochs=None):
        """Batched, prefetched examples of a split.

        Args:
          split: a split name.
          batch_size: a positive int.
          shuffle_seed: shuffle with this seed; None keeps the stored order.
          repeat: repeat forever (reshuffled each pass with ``shuffle_seed``).
          drop_remainder: drop a last, smaller batch.
          map_fn: applied to each batch of ``(features, labels)`` (a task's
            ``training_pair``).
          epochs: with ``shuffle_seed``, a ``range`` of 0-based epoch numbers: one pass per
            epoch, in an order that is a function of ``(shuffle_seed, epoch)`` alone (a
            resumed run reads what the uninterrupted run read), each of `steps_per_epoch`
            batches. None: one pass, reshuffled on each iteration.

        Returns:
          A ``tf.data.Dataset``.
        """
        dataset = self.examples(split)
        if shuffle_seed is not None and epochs is not None:
            dataset = self._epochs(dataset, split, batch_size, shuffle_seed, epochs,
                                   drop_remainder)
        else:
            if shuffle_seed is not None:
                dataset = dataset.shuffle(self._shuffle_buffer(split), seed=shuffle_seed,
                                          reshuffle_each_iteration=True)
            if repeat:
                dataset = dataset.repeat()
            dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        if map_fn is not None:
            dataset = dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
        # tf.data's autotuner is off: with it, deleting an iterator (Keras does at the end of
        # fit) sometimes sat idle for seconds.
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)

    def _shuffle_buffer(self, split):
        return min(self._counts[split] or 100_000, 100_000,
                   max(1024, SHUFFLE_BUFFER_BYTES // self._example_bytes()))

    def _epochs(self, examples, split, batch_size, seed, epochs, drop_remainder):
        """One shuffled pass per epoch number, each seeded by ``(seed, epoch)``.

        Python-int seeds per epoch: a tensor seed under a global seed
        (``keras.utils.set_random_seed``) fails in ``tf.data``'s seed handling.
        """
        if not epochs:  # a run resumed after its last epoch
            return examples.take(0).batch(batch_size)
        buffer = self._shuffle_buffer(split)
        passes = [examples.shuffle(buffer, seed=seed * _EPOCH_SEEDS + epoch,
                                   reshuffle_each_iteration=False).batch(
                      batch_size, drop_remainder=drop_remainder) for epoch in epochs]
        steps = (self.info.num_examples[split] // batch_size if drop_remainder
                 else self.steps_per_epoch(split, batch_size))
        order = tf.data.Dataset.range(len(passes)).flat_map(
            lambda index: tf.data.Dataset.from_tensors(index).repeat(steps))
        return tf.data.Dataset.choose_from_datasets(passes, order)

    def steps_per_epoch(self, split, batch_size):
        """The batches of one epoch of `batches`: ``ceil(examples / batch_size)``."""
        return max(1, -(-self.info.num_examples[split] // batch_size))

    def take(self, split, count):
        """Up to ``count`` first examples of a split as NumPy ``(features, labels)``; a split
        that is cached in memory is read whole into the cache first."""
        examples = self.examples(split)
        if self.cached(split) and split not in self._filled:
            for _ in examples.batch(_READ_BATCH):
                pass
            self._filled.add(split)
        features, labels = [], []
        for x, y in examples.take(count).batch(_READ_BATCH).as_numpy_iterator():
            features.append(x)
            labels.append(y)
        if not features:
            raise ValueError(f"dataset {self.info.name!r} has an empty {split} split")
        return np.concatenate(features), np.concatenate(labels)


def open_dataset(name, *, data_dir=None, download=True, feature_shape=None,
                 csv_options=None):
    """Opens a dataset: prepares (or downloads) it if needed and describes it.

    Args:
      name: an embedded dataset, ``csv:PATH``, ``npz:PATH`` or a TFDS catalog name.
      data_dir: TFDS data folder (any tf.io.gfile path); None for TFDS's default.
      download: whether a catalog dataset may be downloaded.
      feature_shape: reshape each example to this (same number of values); None keeps
        the stored shape.
      csv_options: `selu_zoo.datasets.tabular.CsvOptions` for CSV and .npz files.

    Returns:
      The `Dataset`.

    Raises:
      ValueError: for an unknown name or a ``feature_shape`` that does not fit.
      selu_zoo.datasets.DatasetNotAvailableError: for a catalog dataset that is neither
        prepared nor downloadable now.
      selu_zoo.storage.CorruptFileError: for corrupt or incomplete prepared data.
      selu_zoo.datasets.tabular.CsvError: for a tabular file that cannot be used.
    """
    source = sources.open_source(name, data_dir=data_dir, download=download,
                                 csv_options=csv_options)
    return Dataset(source, feature_shape)
