"""tf.data input pipelines and dataset statistics for selu_zoo models.

A dataset name is either one of `EMBEDDED_DATASETS` (prepared offline on first use) or a
TFDS catalog name such as ``mnist``, read with ``tfds.load(..., download=False)`` from a
``data_dir`` where it was prepared beforehand. Nothing here downloads anything.

Pipelines yield ``(features, label)`` tuples of float32 features (catalog images are
scaled from uint8 to [0, 1]) and int64 class labels or float32 regression targets.
Standardization is deliberately *not* part of the pipeline: `DatasetInfo` carries the
per-feature mean and variance of the train split only, from which a model builds its own
``keras.layers.Normalization(mean=info.mean, variance=info.variance)``, so that the
saved model standardizes its own inputs and no statistic leaks from validation or test.

Catalog datasets without a ``validation`` split (``mnist``, ``fashion_mnist``, ...) get
one carved from the end of their train split: ``validation`` is
``train[90%:]`` and ``train`` is ``train[:90%]`` (see `CATALOG_VALIDATION_PERCENT`);
the statistics and ``num_examples`` describe these carved splits.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
from typing import Mapping, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from selu_zoo.datasets import builders

TRAIN, VALIDATION, TEST = builders.TRAIN, builders.VALIDATION, builders.TEST
CLASSIFICATION = "classification"
REGRESSION = "regression"

# Percentage of a catalog train split held out as validation when there is none.
CATALOG_VALIDATION_PERCENT = 10
# Upper bound of the shuffle buffer; smaller train splits are shuffled uniformly.
MAX_SHUFFLE_BUFFER = 100_000
# Batch size used internally to read a split into numpy or to compute statistics.
_READ_BATCH = 4096


class DatasetNotAvailableError(ValueError):
    """A catalog dataset is not prepared in ``data_dir`` (and is never downloaded)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Attributes:
      name: The dataset name as given.
      task: ``"classification"`` or ``"regression"``.
      num_classes: Number of classes; None for regression.
      feature_shape: Shape of one example's features after reshaping.
      num_examples: Split name -> number of examples.
      mean: Per-feature float32 mean over the train split only, shape ``feature_shape``.
      variance: Per-feature float32 population variance (ddof=0, as Keras'
        ``Normalization.adapt``) over the train split only, shape ``feature_shape``.
        Constant features (e.g. digits' border pixels) have variance 0; Keras'
        ``Normalization`` then divides by its epsilon floor instead.
      label_names: Class names; None for regression.
    """

    name: str
    task: str
    num_classes: int | None
    feature_shape: tuple
    num_examples: dict
    mean: np.ndarray
    variance: np.ndarray
    label_names: tuple | None


@dataclasses.dataclass(frozen=True)
class _Source:
    """An opened dataset: its builder and how to turn its examples into float32 pairs."""

    name: str
    builder: tfds.core.DatasetBuilder
    data_dir: str | None
    catalog: bool
    image: bool
    stored_shape: tuple[int, ...]
    task: str
    num_classes: int | None
    label_names: tuple[str, ...] | None
    split_specs: Mapping[str, str]  # Empty when TFDS does not know the splits.


def _open_source(name: str, data_dir) -> _Source:
    """Opens an embedded dataset (preparing it if needed) or a catalog dataset.

    Args:
      name: An embedded name (``adding_problem/t200`` selects a config) or a TFDS
        catalog name (with optional ``/config`` and ``:version``).
      data_dir: TFDS data directory or None for TFDS's default.

    Returns:
      The `_Source`.

    Raises:
      ValueError: If the name is neither embedded nor in the TFDS catalog, or the
        dataset has no supported ``(features, label)`` structure.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    data_dir = None if data_dir is None else os.fspath(data_dir)
    base, _, config = name.partition("/")
    if base in builders.EMBEDDED_BUILDERS:
        builder = builders.embedded_builder(base, data_dir=data_dir, config=config or None)
        return _describe(name, builder, data_dir, catalog=False)
    if base.partition(":")[0] in tfds.list_builders(with_community_datasets=False):
        builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
        return _describe(name, builder, data_dir, catalog=True)
    raise ValueError(
        f"unknown dataset {name!r}: not an embedded dataset "
        f"({', '.join(builders.EMBEDDED_DATASETS)}) and not in the TFDS catalog")


def _supervised_keys(name: str, info: tfds.core.DatasetInfo) -> tuple[str, str]:
    """Returns the ``(input, label)`` feature keys of a dataset.

    Raises:
      ValueError: If the dataset has no flat ``supervised_keys`` pair.
    """
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2
            and all(isinstance(key, str) for key in keys)):
        raise ValueError(
            f"dataset {name!r} has supervised_keys {keys!r}; an (input, label) pair of "
            "feature names is required")
    return keys


def _label_kind(name: str, feature) -> tuple[str, int | None, tuple[str, ...] | None]:
    """Returns ``(task, num_classes, label_names)`` for a label feature.

    Raises:
      ValueError: If the label is neither a ``ClassLabel`` nor a float scalar.
    """
    if isinstance(feature, tfds.features.ClassLabel):
        return CLASSIFICATION, feature.num_classes, tuple(feature.names)
    if tuple(feature.shape) == () and tf.as_dtype(feature.tf_dtype).is_floating:
        return REGRESSION, None, None
    raise ValueError(
        f"dataset {name!r}: label feature {type(feature).__name__} is not supported; "
        "need a ClassLabel or a float scalar")


def _describe(name: str, builder, data_dir, *, catalog: bool) -> _Source:
    """Builds a `_Source` from a builder's metadata.

    Raises:
      ValueError: If the input feature has a variable or non-numeric shape/dtype.
    """
    info = builder.info
    input_key, label_key = _supervised_keys(name, info)
    feature = info.features[input_key]
    shape = tuple(feature.shape)
    dtype = tf.as_dtype(feature.tf_dtype)
    if any(dim is None for dim in shape) or not (
            dtype.is_floating or dtype.is_integer or dtype.is_bool):
        raise ValueError(
            f"dataset {name!r}: input {input_key!r} has shape {shape} and dtype "
            f"{dtype.name}; a fixed shape and a numeric dtype are required")
    task, num_classes, label_names = _label_kind(name, info.features[label_key])
    return _Source(
        name=name, builder=builder, data_dir=data_dir, catalog=catalog,
        image=isinstance(feature, tfds.features.Image), stored_shape=shape, task=task,
        num_classes=num_classes, label_names=label_names,
        split_specs=_split_specs(info.splits))


def _split_specs(splits) -> dict[str, str]:
    """Maps our split names to TFDS split specs, carving validation from train if needed.

    Args:
      splits: ``builder.info.splits``; empty when TFDS does not know them (then split
        names are passed to TFDS unchanged).

    Returns:
      Split name -> TFDS split string.
    """
    specs = {split: split for split in splits.keys()}
    if specs and VALIDATION not in specs and TRAIN in specs:
        cut = 100 - CATALOG_VALIDATION_PERCENT
        specs[TRAIN] = f"{TRAIN}[:{cut}%]"
        specs[VALIDATION] = f"{TRAIN}[{cut}%:]"
    return specs


def _split_spec(source: _Source, split: str) -> str:
    """Returns the TFDS split spec of one of our split names.

    Raises:
      ValueError: If the dataset has no such split.
    """
    if not isinstance(split, str):
        raise ValueError(f"split must be a string, got {split!r}")
    if not source.split_specs:
        return split
    if split not in source.split_specs:
        raise ValueError(
            f"dataset {source.name!r} has no split {split!r}; available: "
            f"{', '.join(source.split_specs)}")
    return source.split_specs[split]


def _not_available(source: _Source) -> DatasetNotAvailableError:
    """Returns the one-line error for a catalog dataset missing from ``data_dir``."""
    return DatasetNotAvailableError(
        f"dataset {source.name!r} is not prepared in data_dir "
        f"{os.fspath(source.builder.data_dir_root)!r} and selu_zoo never downloads; "
        f"prepare it there with network access (tfds.builder({source.name!r}, "
        "data_dir=...).download_and_prepare()) or use an embedded dataset that works "
        f"offline: {', '.join(builders.EMBEDDED_DATASETS)}")


def _load_raw(source: _Source, split: str) -> tf.data.Dataset:
    """Reads one split as ``(input, label)`` pairs in the stored order.

    Raises:
      DatasetNotAvailableError: If a catalog dataset is not prepared in ``data_dir``.
      ValueError: If the dataset has no such split.
    """
    spec = _split_spec(source, split)
    if not source.catalog:
        return source.builder.as_dataset(split=spec, as_supervised=True,
                                         shuffle_files=False)
    try:
        return tfds.load(source.name, split=spec, data_dir=source.data_dir,
                         download=False, try_gcs=False, as_supervised=True,
                         shuffle_files=False)
    except AssertionError as error:  # TFDS's "could not find data in ..." check.
        if source.builder.data_path.exists():
            raise
        raise _not_available(source) from error


def _convert(features, label, *, image: bool, regression: bool, shape):
    """Casts one example to float32 features of ``shape``.

    Integer images are divided by their dtype's maximum (255 for uint8), so they lie in
    [0, 1] and each value is the correctly rounded quotient.
    """
    scale = features.dtype.max if image and features.dtype.is_integer else None
    features = tf.cast(features, tf.float32)
    if scale is not None:
        features = features / scale
    if regression:
        label = tf.cast(label, tf.float32)
    return tf.reshape(features, shape), label


def _read(source: _Source, split: str, shape: Sequence[int]) -> tf.data.Dataset:
    """Reads one split as float32 ``(features, label)`` with features of ``shape``."""
    convert = functools.partial(_convert, image=source.image,
                                regression=source.task == REGRESSION,
                                shape=tuple(shape))
    return _load_raw(source, split).map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def _checked_feature_shape(source: _Source, feature_shape) -> tuple[int, ...]:
    """Validates a requested feature shape against the stored one.

    Args:
      source: The opened dataset.
      feature_shape: None (keep the stored shape) or a sequence of positive ints with
        the same number of elements as the stored shape.

    Returns:
      The shape as a tuple of ints.

    Raises:
      ValueError: If the shape is malformed or holds a different number of values;
        the message names both shapes.
    """
    stored = source.stored_shape
    if feature_shape is None:
        return stored
    size = int(np.prod(stored))
    try:
        dims = tuple(feature_shape)
    except TypeError:
        dims = None
    valid = dims is not None and all(
        isinstance(dim, numbers.Integral) and not isinstance(dim, bool) and dim > 0
        for dim in dims)
    if not valid or int(np.prod(dims)) != size:
        raise ValueError(
            f"feature_shape {feature_shape!r} is incompatible with the stored feature "
            f"shape {stored} of dataset {source.name!r} ({size} values per example)")
    return tuple(int(dim) for dim in dims)


def _count(dataset: tf.data.Dataset) -> int:
    """Returns the number of elements, from the cardinality when TF knows it."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(np.int64(0), lambda count, _: count + 1))


def _train_moments(source: _Source) -> tuple[np.ndarray, np.ndarray, int]:
    """Computes the per-feature mean and population variance of the train split.

    Batches are merged with Chan et al.'s parallel update in float64, so the result
    matches a two-pass numpy computation without holding the split in memory.

    Returns:
      ``(mean, variance, count)``; the arrays have the stored feature shape.

    Raises:
      ValueError: If the train split is empty.
    """
    count, mean, m2 = 0, None, None
    batches = _read(source, TRAIN, source.stored_shape).batch(_READ_BATCH)
    for features, _ in batches.as_numpy_iterator():
        features = features.astype(np.float64)
        n = features.shape[0]
        batch_mean = features.mean(axis=0)
        batch_m2 = np.square(features - batch_mean).sum(axis=0)
        if count == 0:
            mean, m2 = batch_mean, batch_m2
        else:
            delta = batch_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + np.square(delta) * (count * n / total)
        count += n
    if count == 0:
        raise ValueError(f"dataset {source.name!r} has an empty train split")
    return mean, m2 / count, count


def _frozen(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Returns a read-only float32 copy of ``array`` reshaped to ``shape``."""
    result = np.array(array, dtype=np.float32).reshape(shape)
    result.setflags(write=False)
    return result


def _build_info(source: _Source, feature_shape) -> DatasetInfo:
    """Builds the `DatasetInfo` of an opened dataset (reads the train split once)."""
    shape = _checked_feature_shape(source, feature_shape)
    mean, variance, train_count = _train_moments(source)
    num_examples = {TRAIN: train_count}
    for split in source.split_specs:
        if split != TRAIN:
            num_examples[split] = _count(_load_raw(source, split))
    logging.info("Dataset %s: %s examples, train statistics over %d", source.name,
                 num_examples, train_count)
    return DatasetInfo(
        name=source.name, task=source.task, num_classes=source.num_classes,
        feature_shape=shape, num_examples=num_examples, mean=_frozen(mean, shape),
        variance=_frozen(variance, shape), label_names=source.label_names)


def load_info(name: str, *, feature_shape=None, data_dir=None) -> DatasetInfo:
    """Describes a dataset, with feature statistics of its train split.

    Args:
      name: One of `EMBEDDED_DATASETS` (prepared offline on first use) or a TFDS
        catalog name prepared in ``data_dir``.
      feature_shape: Shape of one example's features (e.g. ``(8, 8, 1)`` for digits);
        None keeps the stored shape. ``mean`` and ``variance`` take this shape.
      data_dir: TFDS data directory; None uses TFDS's default (``TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).

    Returns:
      The `DatasetInfo`.

    Raises:
      ValueError: For an unknown name or an incompatible ``feature_shape``.
      DatasetNotAvailableError: If a catalog dataset is not prepared in ``data_dir``.
    """
    return _build_info(_open_source(name, data_dir), feature_shape)


def load_arrays(name: str, split: str, *, feature_shape=None,
                data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Reads a whole split into numpy arrays, in the stored (unshuffled) order.

    Args:
      name: Dataset name, as for `load_info`.
      split: ``"train"``, ``"validation"`` or ``"test"``.
      feature_shape: Shape of one example's features; None keeps the stored shape.
      data_dir: TFDS data directory; None uses TFDS's default.

    Returns:
      ``(features, labels)``: float32 features of shape ``(n, *feature_shape)`` and
      int64 class labels or float32 targets of shape ``(n,)``. Not standardized.

    Raises:
      ValueError: For an unknown name or split, or an incompatible ``feature_shape``.
      DatasetNotAvailableError: If a catalog dataset is not prepared in ``data_dir``.
    """
    source = _open_source(name, data_dir)
    shape = _checked_feature_shape(source, feature_shape)
    features, labels = [], []
    for batch_features, batch_labels in (
            _read(source, split, shape).batch(_READ_BATCH).as_numpy_iterator()):
        features.append(batch_features)
        labels.append(batch_labels)
    if not features:
        label_dtype = np.float32 if source.task == REGRESSION else np.int64
        return np.zeros((0, *shape), np.float32), np.zeros((0,), label_dtype)
    return np.concatenate(features), np.concatenate(labels)


def _check_batch_size(batch_size) -> None:
    """Raises ValueError unless ``batch_size`` is a positive int (not a bool)."""
    if (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
            or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def _check_splits(splits) -> tuple[str, ...]:
    """Returns the requested split names as a tuple.

    Raises:
      ValueError: If ``splits`` is a string, empty, has duplicates or non-strings.
    """
    if isinstance(splits, str):
        raise ValueError(f"splits must be a sequence of split names, got {splits!r}")
    names = tuple(splits)
    if not names or len(set(names)) != len(names) or not all(
            isinstance(split, str) for split in names):
        raise ValueError(f"splits must be distinct split names, got {splits!r}")
    return names


def _finish(dataset: tf.data.Dataset, batch_size: int, *, shuffle_buffer: int,
            shuffle_seed, cache: bool, drop_remainder: bool) -> tf.data.Dataset:
    """Caches, optionally shuffles (each epoch anew), batches and prefetches."""
    if cache:
        dataset = dataset.cache()
    if shuffle_buffer > 0:
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed,
                                  reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE)


def make_datasets(
    name: str,
    batch_size: int,
    *,
    feature_shape=None,
    data_dir=None,
    shuffle_seed: int | None = 0,
    splits: Sequence[str] = (TRAIN, VALIDATION, TEST),
    cache: bool = True,
    drop_remainder_train: bool = False,
) -> tuple[dict[str, tf.data.Dataset], DatasetInfo]:
    """Builds batched ``(features, label)`` pipelines for a dataset.

    The train split is shuffled with ``shuffle_seed`` and reshuffled every epoch (the
    sequence of epoch orders is reproducible for a fixed seed); the other splits keep
    the stored order. Every split is cached in memory after decoding (if ``cache``),
    batched and prefetched with ``tf.data.AUTOTUNE``. Features are NOT standardized:
    use ``info.mean`` and ``info.variance`` (train split only) in the model.

    Args:
      name: Dataset name, as for `load_info`.
      batch_size: Positive number of examples per batch.
      feature_shape: Shape of one example's features, e.g. ``(64,)``, ``(8, 8, 1)`` or
        ``(8, 8)`` for digits; None keeps the stored shape.
      data_dir: TFDS data directory; None uses TFDS's default.
      shuffle_seed: Seed of the train shuffle; None for an unseeded shuffle.
      splits: Split names to build.
      cache: Whether to cache the decoded examples in memory.
      drop_remainder_train: Whether to drop the last, smaller train batch.

    Returns:
      ``(datasets, info)``: split name -> ``tf.data.Dataset``, and the `DatasetInfo`.

    Raises:
      ValueError: For a bad ``batch_size``, ``splits`` or ``feature_shape``, or an
        unknown dataset or split.
      DatasetNotAvailableError: If a catalog dataset is not prepared in ``data_dir``.
    """
    _check_batch_size(batch_size)
    names = _check_splits(splits)
    source = _open_source(name, data_dir)
    info = _build_info(source, feature_shape)
    num_examples = dict(info.num_examples)
    datasets = {}
    for split in names:
        dataset = _read(source, split, info.feature_shape)
        if split not in num_examples:
            num_examples[split] = _count(dataset)
        is_train = split == TRAIN
        datasets[split] = _finish(
            dataset, int(batch_size),
            shuffle_buffer=min(num_examples[split], MAX_SHUFFLE_BUFFER) if is_train else 0,
            shuffle_seed=shuffle_seed, cache=cache,
            drop_remainder=is_train and drop_remainder_train)
    if num_examples != info.num_examples:
        info = dataclasses.replace(info, num_examples=num_examples)
    return datasets, info
