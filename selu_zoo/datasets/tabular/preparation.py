"""`prepare_csv` and `prepare_npz`: hash, reuse or read once, split, write, return a builder."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import time

from absl import logging
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
import tensorflow_datasets as tfds

from selu_zoo import storage
from selu_zoo.datasets import statistics
from selu_zoo.datasets.tabular import labels as labels_lib
from selu_zoo.datasets.tabular import spec
from selu_zoo.datasets.tabular.csv_file import MISSING_MESSAGE, open_files
from selu_zoo.datasets.tabular.npz_file import NpzFile

NAME, VERSION = "selu_zoo_csv", "1.0.0"  # The folder <data_dir>/selu_zoo_csv/<stem>_<key>/1.0.0
PREPARATION_FORMAT = 3  # Part of the key: bump when the same input would be prepared otherwise.
BLOCK_ROWS = 1024  # Rows per stored TFDS example.
# Rows go to random buckets, each shuffled in memory and written as one shard per split:
# one bucket in memory for inputs up to _MEMORY_BYTES, else files of about _BUCKET_BYTES.
_MEMORY_BYTES, _BUCKET_BYTES, _MAX_BUCKETS = 256 << 20, 64 << 20, 256


def default_data_dir() -> str:
    """TFDS's data directory: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _stamp(path: str) -> tuple[int, int]:
    stat = tf.io.gfile.stat(path)
    return stat.length, stat.mtime_nsec


def file_sha256(path: str) -> str:
    """The hex SHA-256 of a file's bytes (raises `storage.StorageError` if unreadable)."""
    hasher = hashlib.sha256()
    with storage.reported("read", path), tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


class _Buckets:
    """Rows ``(x, row)`` in random buckets: one in memory, or files on disk."""

    def __init__(self, directory: str, input_bytes: int, num_features: int):
        self.dtype = np.dtype([("x", "<f4", (num_features,)), ("row", "<i8")])
        self.count = 1 if input_bytes <= _MEMORY_BYTES else min(
            -(-input_bytes // _BUCKET_BYTES), _MAX_BUCKETS)
        self.folder, self.parts, self.files = storage.join(directory, "buckets"), [], []
        self.paths = [storage.join(self.folder, f"{i:05d}") for i in range(self.count)]
        if self.count > 1:
            storage.makedirs(self.folder)
            self.files = [tf.io.gfile.GFile(path, "wb") for path in self.paths]

    def write(self, x: np.ndarray, rows: np.ndarray, bucket: np.ndarray) -> None:
        if not self.files:
            return self.parts.append((x, rows))
        records = np.empty(len(rows), self.dtype)
        records["x"], records["row"] = x, rows
        for index, file in enumerate(self.files):
            file.write(records[bucket == index].tobytes())

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.files:
            return tuple(map(np.concatenate, zip(*self.parts)))
        with tf.io.gfile.GFile(self.paths[index], "rb") as f:
            records = np.frombuffer(f.read(), self.dtype)
        return records["x"], records["row"]


def _read(sources, options, buckets):
    """Reads and checks every row once, into a random bucket; returns each batch's labels
    (dictionary-encoded), per row the split the files or a split column give (None if they
    do not) and the bucket, per feature the count of missing values, and each file's first
    row.

    Raises:
      spec.CsvError: At the first bad feature or split value, or for a file without rows.
    """
    rng = np.random.default_rng([options.split_seed, 1])
    labels, given, bucket_of, starts = [], [], [], []
    missing, total = np.zeros(len(sources[0].feature_names), np.int64), 0
    for file_index, source in enumerate(sources):
        starts.append(total)
        for x, texts, splits in source.batches():
            first, n = total - starts[-1], len(x)
            bad = ~np.isfinite(x)  # Missing (NaN), or not a finite float32 (inf).
            if bad.any():
                nan = np.isnan(x)
                fatal = bad if options.missing == "error" else bad & ~nan
                if fatal.any():
                    row, position = map(int, np.argwhere(fatal)[0])
                    source.fail(first + row, position, MISSING_MESSAGE if nan[row, position]
                                else "{text} is not a finite float32 number (magnitude below "
                                     "3.4e38)")
                missing += nan.sum(axis=0)
            labels.append(texts.dictionary_encode())
            if splits is not None:  # The index in spec.SPLITS of each value.
                given.append(pc.index_in(pc.utf8_lower(pc.utf8_trim_whitespace(splits)),
                                         value_set=pa.array(spec.SPLITS)).fill_null(-1)
                             .to_numpy().astype(np.int8))
                if (given[-1] < 0).any():
                    source.fail(first + int(np.argmax(given[-1] < 0)), "split",
                                "split {text} is not one of train, validation, test")
            elif len(sources) == 3:
                given.append(np.full(n, file_index, np.int8))
            bucket_of.append(rng.integers(0, buckets.count, n, dtype=np.int16))
            buckets.write(x, np.arange(total, total + n), bucket_of[-1])
            total += n
        if total == starts[-1]:
            raise spec.CsvError(f"{source.path}: no data rows")
    return (labels, np.concatenate(given) if given else None, np.concatenate(bucket_of),
            missing, np.array(starts))


def _lists(message: str, values: np.ndarray) -> list[bytes]:
    """One serialized ``message`` (FloatList, Int64List) per block of `BLOCK_ROWS` rows."""
    full, lists = len(values) // BLOCK_ROWS * BLOCK_ROWS, []
    for part in (values[:full], values[full:]):
        if len(part):
            part = part.reshape(-(-len(part) // BLOCK_ROWS), -1)
            lists.extend(tf.io.encode_proto(np.full((len(part), 1), part.shape[1], np.int32),
                                            [part], ["value"], f"tensorflow.{message}").numpy())
    return lists


def _write_shard(path: str, x: np.ndarray, label: np.ndarray, row: np.ndarray, rng) -> int:
    """Writes rows as one ``tf.train.Example`` per block of consecutive rows, the blocks in a
    random order (``rng``); returns the number of blocks."""
    kind = "float" if label.dtype == np.float32 else "int64"
    columns = list(zip(_lists("FloatList", x), _lists(kind.capitalize() + "List", label),
                       _lists("Int64List", row)))
    with tf.io.TFRecordWriter(path) as writer:
        for block in rng.permutation(len(columns)):
            features, labels, rows = columns[block]
            example = tf.train.Example()
            feature = example.features.feature
            feature["features"].float_list.MergeFromString(features)
            getattr(feature["label"], f"{kind}_list").MergeFromString(labels)
            feature["row"].int64_list.MergeFromString(rows)
            writer.write(example.SerializeToString())
    return len(columns)


def _write_splits(directory, buckets, split_of, bucket_of, labels, missing, starts, source,
                  seed):
    """Writes each bucket as one shard per split, its blocks of rows in a random order (a
    shuffle buffer of a hundred blocks then mixes even a sorted file), missing values as the
    train mean; returns (split infos, train moments, imputed means by feature position).

    Raises:
      spec.CsvError: If a feature with missing values has none in the train split.
    """
    count, positions = buckets.count, np.flatnonzero(missing)
    sums, counts = np.zeros(len(positions)), np.zeros(len(positions))
    for index in range(count if len(positions) else 0):  # A pass for the train means.
        x, rows = buckets.read(index)
        x = x[split_of[rows] == 0][:, positions]
        sums += np.nansum(x, axis=0, dtype=np.float64)
        counts += (~np.isnan(x)).sum(axis=0)
    if not counts.all():
        position = int(positions[np.argmin(counts)])
        raise spec.CsvError(f"{source.where(position)}: no value in the train split to impute "
                            f"its {missing[position]} missing values from; exclude the column")
    means = {int(p): float(total / n) for p, total, n in zip(positions, sums, counts)}
    shards = np.bincount(split_of * count + bucket_of, minlength=3 * count).reshape(3, count)
    shards = [np.flatnonzero(in_split).tolist() for in_split in shards]
    lengths, rng = [[], [], []], np.random.default_rng([seed, 2])
    features, targets = statistics.Accumulator(), statistics.Accumulator()
    templates = [tfds.core.ShardedFileTemplate(data_dir=directory, dataset_name=NAME,
                                               split=name, filetype_suffix="tfrecord")
                 for name in spec.SPLITS]
    for index in range(count):
        xs, ids = buckets.read(index)
        for split, template in enumerate(templates):
            chosen = split_of[ids] == split
            if not chosen.any():
                continue
            x, row = xs[chosen], ids[chosen]
            label = labels[row]
            for position, mean in means.items():
                x[np.isnan(x[:, position]), position] = mean
            for start in range(0, len(x) * (split == 0), 1 << 16):  # Train statistics.
                features.add(x[start:start + (1 << 16)])
                targets.add(label[start:start + (1 << 16)])
            row = row - starts[np.searchsorted(starts, row, side="right") - 1]  # In its file.
            path = template.sharded_filepath(shard_index=shards[split].index(index),
                                             num_shards=len(shards[split]))
            lengths[split].append(_write_shard(os.fspath(path), x, label, row, rng))
    infos = [tfds.core.SplitInfo(name=t.split, shard_lengths=n, num_bytes=0,
                                 filename_template=t) for t, n in zip(templates, lengths)]
    return infos, statistics.Moments(features.count, features.mean, features.variance,
                                     float(targets.mean), float(targets.variance)), means


def _write_dataset(kind, sources, hashes, stamps, options, directory) -> None:
    """Reads, checks and splits the files, and writes the dataset into ``directory``;
    ``hashes()`` gives the files' SHA-256s and the key once the metadata needs them."""
    source, layout = sources[0], sources[0] if kind == "csv" else None
    size = sum(tf.io.gfile.stat(s.path).length for s in sources)
    buckets = _Buckets(directory, size, len(source.feature_names))
    try:
        chunks, given, bucket_of, missing, starts = _read(sources, options, buckets)
    finally:
        for file in buckets.files:
            file.close()
    paths = [s.path for s in sources]
    for path, stamp in zip(paths, stamps):
        if stamp != _stamp(path):
            raise spec.CsvError(f"{path} changed while it was being prepared; run again")

    def fail(row, message):  # For the label of a row counted over all files.
        file = int(np.searchsorted(starts, row, side="right")) - 1
        sources[file].fail(row - int(starts[file]), "label", message)

    task, class_names, labels = labels_lib.finish(chunks, options.task, fail,
                                                  source.where("label"))
    if given is not None:
        split_of, method = given, "files" if len(sources) == 3 else "column"
        empty = [s for s, n in zip(spec.SPLITS, np.bincount(given, minlength=3)) if not n]
        if empty:
            raise spec.CsvError(f"{source.where('split')}: no rows for the {empty[0]} "
                                f"split; each split needs at least one row")
    else:
        method = "stratified" if task == spec.CLASSIFICATION else "random"
        split_of = labels_lib.holdout_split(labels if class_names else np.zeros(
            len(labels), np.int64), class_names, options.split_seed, source.where("label"))
    infos, moments, means = _write_splits(directory, buckets, split_of.astype(np.int64),
                                          bucket_of.astype(np.int64), labels, missing, starts,
                                          source, options.split_seed)
    storage.remove_tree(buckets.folder)
    names, (digests, key, _) = source.feature_names, hashes()
    split_column = None if layout is None or layout.split is None else layout.names[layout.split]
    metadata = {
        "source": kind, "paths": paths, "sha256": list(digests), "content_hash": key,
        "feature_names": list(names), "label_column": source.label_name,
        "label_index": source.label, "task": task, "split": method,
        "class_names": None if class_names is None else list(class_names),
        "header": None if layout is None else layout.has_header, "split_column": split_column,
        "excluded_columns": [layout.names[i] for i in layout.excluded] if layout else [],
        "split_seed": options.split_seed, "options": dataclasses.asdict(options),
        "imputed_means": {names[p]: mean for p, mean in means.items()},
        "rows_per_example": BLOCK_ROWS,
        "num_rows": dict(zip(spec.SPLITS, np.bincount(split_of, minlength=3).tolist()))}
    label = (tfds.features.Tensor(shape=(None,), dtype=np.float32) if class_names is None
             else tfds.features.Sequence(tfds.features.ClassLabel(names=class_names)))
    tfds.folder_dataset.write_metadata(
        data_dir=directory, split_infos=infos, version=VERSION, check_data=False,
        features=tfds.features.FeaturesDict({
            "features": tfds.features.Tensor(shape=(None, len(names)), dtype=np.float32),
            "label": label, "row": tfds.features.Tensor(shape=(None,), dtype=np.int64)}),
        supervised_keys=("features", "label"), metadata=tfds.core.MetadataDict(metadata),
        description=f"{task.capitalize()} data from {', '.join(paths)} ({kind}), split: "
                    f"{method}. An example is a block of up to {BLOCK_ROWS} rows; `row` is "
                    f"each row's index among its file's data rows.")
    statistics.remember(directory, spec.SPLITS[0], moments)


def is_prepared(directory: str) -> bool:
    return storage.exists(storage.join(directory, "dataset_info.json"))


def _builder(directory: str) -> tfds.core.DatasetBuilder:
    try:
        return tfds.builder_from_directory(directory)
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise storage.CorruptFileError(f"{directory} is not a readable prepared dataset "
                                       f"({reason}); delete it to prepare again") from None


def _prepare(kind: str, paths, options: spec.CsvOptions | None, data_dir: str | None
             ) -> tfds.core.DatasetBuilder:
    options = options or spec.CsvOptions()
    paths = tuple(map(os.fspath, (paths,) if isinstance(paths, (str, os.PathLike)) else paths))
    if len(paths) not in (1, 3):
        raise ValueError(f"give one file or three (train, validation, test), not "
                         f"{len(paths)}: {', '.join(paths)}")
    if len(paths) == 3 and options.split_column is not None:
        raise ValueError("split_column does not apply to three split files: give one file "
                         "with a split column, or three files")
    for option in ("label_column", "header", "exclude_columns", "split_column", "delimiter"):
        if kind == "npz" and getattr(options, option) != getattr(spec.CsvOptions(), option):
            raise ValueError(f"{option} does not apply to .npz files (their arrays x and y are "
                             f"the features and the labels)")
    for path in paths:
        if not storage.exists(path) or storage.isdir(path):
            raise spec.CsvError(f"{path}: " + ("is a folder; give a file" if storage.exists(
                path) else "no such file"))
    stem = re.sub(r"\.[^./]*$", "", paths[0].rstrip("/").rsplit("/", 1)[-1]).lower()
    stem = re.sub(r"[^a-z0-9]+", "_", stem).strip("_")[:40] or "data"
    parent = storage.join(data_dir or default_data_dir(), NAME)
    stamps = list(map(_stamp, paths))  # Unchanged at the end: the data read is the data hashed.
    # Hashing runs beside the read, unless a file of this name was prepared before: then
    # the hash comes first, to reuse that preparation if it is of these bytes.
    executor = concurrent.futures.ThreadPoolExecutor(1)
    hashing = executor.submit(lambda: [file_sha256(path) for path in paths])
    executor.shutdown(wait=False)

    def hashes():  # The files' SHA-256s, the key and the folder of the prepared data.
        payload = {"format": PREPARATION_FORMAT, "kind": kind, "sha256": hashing.result(),
                   "options": dataclasses.asdict(options)}
        key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        return payload["sha256"], key, storage.join(parent, f"{stem}_{key}", VERSION)

    if any(name.startswith(f"{stem}_") for name in storage.listdir(parent)):
        directory = hashes()[2]
        if is_prepared(directory):
            logging.info("Reusing %s prepared in %s", ", ".join(paths), directory)
            return _builder(directory)
    start = time.perf_counter()
    sources = open_files(paths, options) if kind == "csv" else list(map(NpzFile, paths))
    for source in sources[1:]:
        if len(source.feature_names) != len(sources[0].feature_names):  # .npz files
            raise spec.CsvError(f"{source.path}: {len(source.feature_names)} features per row, "
                                f"but {paths[0]} has {len(sources[0].feature_names)}; separate "
                                f"split files need the same columns")
    temporary = storage.temporary_sibling(storage.join(parent, stem), VERSION)
    try:  # Another process publishing the same key first wins: its data is the same.
        storage.makedirs(temporary)
        _write_dataset(kind, sources, hashes, stamps, options, temporary)
        directory = hashes()[2]
        storage.makedirs(directory.rsplit("/", 1)[0])
        storage.rename_exclusive(temporary, directory)
        logging.info("Prepared %s in %s in %.1f s", ", ".join(paths), directory,
                     time.perf_counter() - start)
    except FileExistsError:
        if not is_prepared(directory):
            raise storage.CorruptFileError(f"{directory} exists but holds no prepared "
                                           f"dataset; delete it to prepare again") from None
        logging.info("%s was prepared concurrently; reusing it", directory)
    finally:
        storage.remove_tree(temporary)
    return _builder(directory)


def prepare_csv(paths, options: spec.CsvOptions | None = None, data_dir: str | None = None
                ) -> tfds.core.DatasetBuilder:
    """Validates CSV files, prepares them once (reused while their bytes and the options are
    the same; nothing is published unless every row passes), and returns their builder.

    Args:
      paths: One CSV file (split 60/20/20, or by `CsvOptions.split_column`) or three (train,
        validation, test), as ``tf.io.gfile`` paths.
      options: How to read the files; None for the defaults.
      data_dir: TFDS data directory (not ``ram://``); None for `default_data_dir`.

    Returns:
      A ``tfds.core.DatasetBuilder`` whose examples are blocks of up to `BLOCK_ROWS` rows:
      ``features``, ``label`` and ``row``; ``info.metadata`` describes the files and columns.
      The train statistics are stored beside it (`selu_zoo.datasets.statistics`).

    Raises:
      spec.CsvError: For a bad file, in one line naming the file, and the column and line.
      ValueError: If the paths or options do not fit together.
      storage.StorageError: If a file cannot be read or ``data_dir`` cannot be written.
    """
    return _prepare("csv", paths, options, data_dir)


def prepare_npz(paths, options: spec.CsvOptions | None = None, data_dir: str | None = None
                ) -> tfds.core.DatasetBuilder:
    """`prepare_csv` for ``.npz`` files of arrays ``x`` (rows) and ``y`` (labels): only the
    options ``task``, ``missing`` (NaN is missing) and ``split_seed`` apply; features are
    ``x_<i>`` (``x`` flattened per row), the label ``y``, bad values named ``x[17]``."""
    return _prepare("npz", paths, options, data_dir)


def prepare(name: str, options: spec.CsvOptions | None = None, data_dir: str | None = None
            ) -> tfds.core.DatasetBuilder:
    """Prepares a ``csv:...`` or ``npz:...`` dataset name (see `spec.parse_spec`)."""
    return _prepare("csv" if spec.is_csv(name) else "npz", spec.parse_spec(name), options,
                    data_dir)
