"""Opening a dataset by name: embedded builders, the TFDS catalog (downloaded on request), CSV.

`open_source` returns a `Source`: the prepared TFDS builder, what its examples are, and
`Source.read_batches`, the one place that reads a split's files. What can be checked without
reading data is checked here, before any training.
"""

import dataclasses
import os
import socket
import tempfile
import urllib.parse

from absl import logging
from google.protobuf import json_format
import tensorflow as tf
import tensorflow_datasets as tfds

from selu_zoo import storage
from selu_zoo.datasets import builders, tabular

TRAIN, VALIDATION, TEST = builders.TRAIN, builders.VALIDATION, builders.TEST
CLASSIFICATION = "classification"
REGRESSION = "regression"
# Percentage of a catalog train split held out as validation when there is none.
CATALOG_VALIDATION_PERCENT = 10
# Seconds to wait for each download host before saying that the network is not there.
DOWNLOAD_PROBE_TIMEOUT = 5.0
# Records per batch of `Source.read_batches` (parsed in one call where it parses in batches).
PARSE_BATCH = 1024


class DatasetNotAvailableError(ValueError):
    """A catalog dataset is not prepared in ``data_dir`` and cannot be downloaded now."""


@dataclasses.dataclass(frozen=True)
class Source:
    """A prepared dataset: its builder and what its examples are.

    Attributes:
      name: the name as given (``digits``, ``mnist``, ``csv:data.csv``, ...).
      builder: the prepared ``tfds.core.DatasetBuilder``.
      image: whether features are a ``tfds.features.Image`` (integers scaled to [0, 1]).
      stored_shape: the shape of one example's features as stored.
      task: ``"classification"`` or ``"regression"``.
      num_classes, label_names: classes and their names; None for regression.
      feature_names: names of the features of tabular data; None otherwise.
      split_specs: our split name -> TFDS split spec (validation may be carved from train).
    """

    name: str
    builder: tfds.core.DatasetBuilder
    image: bool
    stored_shape: tuple
    task: str
    num_classes: int | None
    label_names: tuple | None
    feature_names: tuple | None
    split_specs: dict

    def read_batches(self, split):
        """One split's raw ``(features, labels)`` pairs from disk, in batches of up to
        `PARSE_BATCH`, in the order and with the values of ``builder.as_dataset``.

        Plain tensors in TFRecord files (embedded and tabular data) are parsed a batch (or
        a stored block of rows) per call, not a record per call as TFDS does; other data
        goes through ``as_dataset``. TFDS's own memory cache is off either way.
        """
        spec = self.split_specs[split]
        parser = _parser(self.builder)
        if parser is None:
            return self.builder.as_dataset(
                split=spec, as_supervised=True, shuffle_files=False,
                read_config=tfds.ReadConfig(try_autocache=False)).batch(PARSE_BATCH)
        instructions = self.builder.info.splits[spec].file_instructions
        files = tf.data.Dataset.from_tensor_slices((
            [os.fspath(i.filename) for i in instructions],
            tf.constant([i.skip for i in instructions], tf.int64),
            tf.constant([i.take for i in instructions], tf.int64)))
        # TFDS's read order: files in sequence for builders that disable shuffling, else
        # interleaved 16 files at a time in blocks of 16 records. A parallel interleave over
        # a single file only adds threads that compete with the train step for the CPU.
        cycle = 1 if self.builder.info.disable_shuffling else min(16, len(instructions))
        parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True} \
            if cycle > 1 else {}
        records = files.interleave(
            lambda path, skip, take: tf.data.TFRecordDataset(path).skip(skip).take(take),
            cycle_length=cycle, block_length=16, **parallel)
        if not self.blocks:
            records = records.batch(PARSE_BATCH)
        return records.map(parser, num_parallel_calls=tf.data.AUTOTUNE)

    @property
    def blocks(self):
        """Whether each stored example is a block of rows (tabular data)."""
        return _blocks(self.builder.info)

    def num_examples(self, split):
        """The number of examples (rows) of a split from the builder's info; None when the
        info does not say (mocked catalog data)."""
        splits = self.builder.info.splits
        if self.blocks:
            return int(self.builder.info.metadata["num_rows"][self.split_specs[split]])
        if not splits:
            cardinality = int(self.builder.as_dataset(
                split=self.split_specs[split], as_supervised=True).cardinality())
            return cardinality if cardinality >= 0 else None
        return int(splits[self.split_specs[split]].num_examples)


def _blocks(info):
    """Whether each example stores a block of rows (a prepared tabular dataset)."""
    return bool((info.metadata or {}).get("rows_per_example"))


def _parser(builder):
    """A function from serialized records to ``(features, labels)``, or None unless the data
    are TFRecord files whose input and label are numeric `Tensor`, `Scalar` or `ClassLabel`
    features (or a `Sequence` of one): then ``tf.io.parse_example`` gives what TFDS's
    decoding gives."""
    info = builder.info
    if info.file_format != tfds.core.FileFormat.TFRECORD or not info.splits:
        return None
    specs, dtypes = {}, {}
    keys = info.supervised_keys
    for key in keys:
        feature = info.features[key]
        if type(feature) not in (tfds.features.Tensor, tfds.features.Scalar,
                                 tfds.features.ClassLabel, tfds.features.Sequence):
            return None
        serialized = feature.get_serialized_info()
        stored, shape = tf.as_dtype(serialized.tf_dtype), tuple(serialized.shape)
        if stored == tf.float32:
            example_dtype = tf.float32
        elif stored.is_integer or stored.is_bool:
            example_dtype = tf.int64
        else:  # Encoded (bytes) or of another type.
            return None
        if _blocks(info) and shape[:1] == (None,) and None not in shape[1:]:
            specs[key] = tf.io.FixedLenSequenceFeature(shape[1:], example_dtype,
                                                       allow_missing=True)
        elif None in shape:
            return None
        else:
            specs[key] = tf.io.FixedLenFeature(shape, example_dtype)
        dtypes[key] = tf.as_dtype(feature.tf_dtype)

    def parse(serialized):  # A block of rows, or a batch of records of a row each.
        parse_fn = tf.io.parse_single_example if _blocks(info) else tf.io.parse_example
        parsed = parse_fn(serialized, specs)
        return tuple(tf.cast(parsed[key], dtypes[key]) for key in keys)

    return parse


def _split_specs(name, splits):
    """Our split names -> TFDS specs, carving validation from the end of train if needed."""
    known = set(splits.keys()) if splits else {TRAIN, TEST}
    specs = {split: split for split in (TRAIN, VALIDATION, TEST) if split in known}
    if VALIDATION not in specs and TRAIN in specs:
        cut = 100 - CATALOG_VALIDATION_PERCENT
        specs[TRAIN], specs[VALIDATION] = f"{TRAIN}[:{cut}%]", f"{TRAIN}[{cut}%:]"
    missing = [split for split in (TRAIN, VALIDATION, TEST) if split not in specs]
    if missing:
        raise ValueError(f"dataset {name!r} has no {' or '.join(missing)} split (it has "
                         f"{', '.join(sorted(known))})")
    return specs


def _check_download_hosts(name, builder):
    """Raises `DatasetNotAvailableError` in one line, naming the host and how to prepare the
    data by hand, when a catalog dataset's hosts are not reachable (TFDS would retry every
    file for minutes)."""
    hosts = sorted({(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
                    for parsed in map(urllib.parse.urlparse, builder.url_infos or {})
                    if parsed.hostname})
    for host, port in hosts:
        try:
            socket.create_connection((host, port), timeout=DOWNLOAD_PROBE_TIMEOUT).close()
        except OSError as error:
            raise DatasetNotAvailableError(
                f"dataset {name!r} could not be downloaded: {host} is not reachable "
                f"({error.strerror or error}); on a machine with network access run "
                f"`tfds build {name} --data_dir={builder.data_dir_root}` and copy the folder "
                "here, or pick an embedded dataset") from None


def _readable(name, folder, make_builder):
    """``make_builder()``; a corrupt prepared ``dataset_info.json`` raises
    `storage.CorruptFileError` naming the dataset's folder and the fix."""
    try:
        # TFDS gives a builder of a dataset not prepared yet an empty temporary folder
        # (DatasetInfo.initialize_from_bucket) and never deletes it: it is made in ours.
        with tempfile.TemporaryDirectory() as scratch:
            saved, tempfile.tempdir = tempfile.tempdir, scratch
            try:
                return make_builder()
            finally:
                tempfile.tempdir = saved
    except json_format.ParseError as error:
        raise storage.CorruptFileError(
            f"the prepared dataset_info.json of {name!r} under {folder} is corrupt "
            f"({str(error).splitlines()[0]}); delete that folder to prepare the dataset "
            "again") from None


def _catalog_builder(name, data_dir, download):
    """The builder of a TFDS catalog dataset, prepared (downloaded if allowed).

    Raises:
      ValueError: for a name outside the catalog.
      DatasetNotAvailableError: if it is not prepared and cannot be downloaded.
      storage.CorruptFileError: if its prepared metadata is corrupt.
    """
    if name.split("/")[0].split(":")[0] not in tfds.list_builders(
            with_community_datasets=False):
        raise ValueError(
            f"unknown dataset {name!r}: not an embedded dataset "
            f"({', '.join(builders.EMBEDDED_DATASETS)}), not csv:PATH, and not in the TFDS "
            "catalog")
    folder = os.path.join(data_dir or tabular.default_data_dir(),
                          name.split("/")[0].split(":")[0])
    builder = _readable(name, folder, lambda: tfds.builder(name, data_dir=data_dir,
                                                           try_gcs=False))
    if builder.is_prepared():
        return builder
    if not download:
        raise DatasetNotAvailableError(
            f"dataset {name!r} is not prepared in {builder.data_dir_root} and --nodownload "
            f"is set; drop --nodownload, or run `tfds build {name} "
            f"--data_dir={builder.data_dir_root}`")
    _check_download_hosts(name, builder)
    logging.info("downloading and preparing %s in %s", name, builder.data_dir_root)
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    except OSError as error:  # requests' ConnectionError is an OSError
        raise DatasetNotAvailableError(
            f"dataset {name!r} could not be downloaded ({str(error).splitlines()[0]}); run "
            f"`tfds build {name} --data_dir={builder.data_dir_root}` by hand") from None
    return builder


def _check_files(name, builder):
    """Raises a one-line error if a prepared data file listed in the info is missing."""
    for split_info in (builder.info.splits or {}).values():
        for path in split_info.filepaths:
            if not tf.io.gfile.exists(os.fspath(path)):
                raise storage.CorruptFileError(
                    f"the prepared data of {name!r} is incomplete: {path} is missing; delete "
                    f"{builder.data_dir} to prepare it again")


def _label_kind(name, feature):
    if isinstance(feature, tfds.features.Sequence):  # blocks of rows
        feature = feature.feature
    if isinstance(feature, tfds.features.ClassLabel):
        return CLASSIFICATION, feature.num_classes, tuple(feature.names)
    if tuple(feature.shape) in ((), (None,)) and tf.as_dtype(feature.tf_dtype).is_floating:
        return REGRESSION, None, None
    raise ValueError(f"dataset {name!r}: label {type(feature).__name__} is not supported; "
                     "need a ClassLabel or a float scalar")


def _describe(name, builder):
    info = builder.info
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str)
                                                                for k in keys)):
        raise ValueError(f"dataset {name!r} has supervised_keys {keys!r}; an (input, label) "
                         "pair of feature names is required")
    feature = info.features[keys[0]]
    shape, dtype = tuple(feature.shape), tf.as_dtype(feature.tf_dtype)
    if _blocks(info):
        shape = shape[1:]
    if any(d is None for d in shape) or not (dtype.is_floating or dtype.is_integer
                                             or dtype.is_bool):
        raise ValueError(f"dataset {name!r}: input {keys[0]!r} has shape {shape} and dtype "
                         f"{dtype.name}; a fixed shape and a numeric dtype are required")
    task, num_classes, label_names = _label_kind(name, info.features[keys[1]])
    metadata = info.metadata or {}
    feature_names = metadata.get("feature_names")
    return Source(name=name, builder=builder, image=isinstance(feature, tfds.features.Image),
                  stored_shape=shape, task=task, num_classes=num_classes,
                  label_names=label_names,
                  feature_names=None if feature_names is None else tuple(feature_names),
                  split_specs=_split_specs(name, info.splits))


def open_source(name, *, data_dir=None, download=True, csv_options=None):
    """Opens (and prepares, or downloads, if needed) the dataset called ``name``.

    Args:
      name: an embedded dataset (``adding_problem/t200`` picks a config), ``csv:PATH``,
        ``csv:TRAIN,VALIDATION,TEST``, ``npz:PATH``, or a TFDS catalog name (optionally
        ``name/config:version``).
      data_dir: TFDS data folder (any tf.io.gfile path); None for TFDS's default.
      download: whether a catalog dataset that is not prepared may be downloaded.
      csv_options: `selu_zoo.datasets.tabular.CsvOptions` for CSV and NPZ files.

    Returns:
      The `Source`.

    Raises:
      ValueError: for an unknown name, or data of an unsupported structure.
      DatasetNotAvailableError: for a catalog dataset that is not prepared and cannot be
        downloaded now.
      storage.CorruptFileError: for corrupt or incomplete prepared data.
      selu_zoo.datasets.tabular.CsvError: for a CSV or NPZ file that cannot be used.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    data_dir = None if data_dir is None else os.fspath(data_dir)
    base, _, config = name.partition("/")
    if tabular.is_csv(name) or tabular.is_npz(name):
        builder = tabular.prepare(name, csv_options, data_dir)
    elif base in builders.EMBEDDED_BUILDERS:
        folder = os.path.join(data_dir or tabular.default_data_dir(),
                              builders.EMBEDDED_BUILDERS[base].name)
        builder = _readable(name, folder, lambda: builders.embedded_builder(
            base, data_dir=data_dir, config=config or None))
    else:
        builder = _catalog_builder(name, data_dir, download)
    _check_files(name, builder)
    return _describe(name, builder)
