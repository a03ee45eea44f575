"""`prepare_csv` and `prepare_npz`: hash, reuse or read once, split, write, return a builder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from typing import Sequence

from absl import logging
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
import tensorflow_datasets as tfds

from selu_zoo import storage
from selu_zoo.datasets import builders, statistics
from selu_zoo.datasets.tabular import spec
from selu_zoo.datasets.tabular.csv_file import (
    CsvFile, FLOAT32_LIMIT, is_missing, MISSING_MESSAGE, not_a_number_kind, parse_number,
    read_layouts)
from selu_zoo.datasets.tabular.npz_file import NpzFile

# TFDS name of every prepared file dataset (the folder under data_dir) and its version.
NAME, VERSION = "selu_zoo_csv", "1.0.0"
# Bump when the same files and options would be prepared differently: the key changes.
PREPARATION_FORMAT = 2
# Rows per stored TFDS example: each example is a block of rows, a column batch.
BLOCK_ROWS = 1024
MAX_CLASSES = 10_000
_MANY_CLASSES = 100  # More classes chosen by task="auto" get a warning.
_MIN_ROWS_PER_CLASS = 3
# Rows go to random buckets of about this many input bytes (at most _MAX_BUCKETS): each
# bucket is shuffled in memory and becomes one shard per split.
_BUCKET_BYTES = 64 << 20
_MAX_BUCKETS = 256
_MEMORY_BYTES = 256 << 20  # Inputs up to this size keep their buckets in memory.


def default_data_dir() -> str:
    """TFDS's data directory: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def file_sha256(path: str) -> str:
    """The hex SHA-256 of a file's bytes (raises `storage.StorageError` if unreadable)."""
    hasher = hashlib.sha256()
    with storage.reported("read", path), tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


class _Labels:
    """Every row's label: a class code while classification is possible, a value while all
    labels are numbers; `finish` decides the task."""

    def __init__(self, task: str):
        self.task = task
        self.code_of: dict[str, int] = {}  # label text -> code of its class name
        self.names, self.values, self.code_of_name = [], [], {}
        self.numeric = self.integer = True
        self.numbers_only = task == spec.REGRESSION
        self.overflow = False

    def add(self, texts: pa.Array, source, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns the int32 codes (-1 once none are kept) and float64 values of a batch."""
        if self.numbers_only:
            values = self._numbers(texts, source, first)
            self.integer = self.integer and bool((values == np.floor(values)).all())
            return np.full(len(values), -1, np.int32), values
        encoded = texts.dictionary_encode()
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        table = []
        for k, text in enumerate(encoded.dictionary.to_pylist()):
            code = self.code_of.get(text)
            table.append(code if code is not None else self._new(
                text, source, lambda k=k: first + int(np.argmax(indices == k))))
            if self.numbers_only:  # Too many distinct numbers: a regression target.
                return self.add(texts, source, first)
        codes = np.array(table, np.int32)[indices]
        return codes, np.array(self.values, np.float64)[codes]

    def _new(self, text: str, source, record) -> int:
        stripped = text.strip()
        if is_missing(stripped):
            source.fail(record(), "label", "missing label {text}; every row needs a label")
        value = parse_number(stripped)
        if value is None and not_a_number_kind(stripped) != "a number":
            source.fail(record(), "label", f"label {{text}} is not {not_a_number_kind(stripped)}")
        if value is None:
            self.numeric, name, value = False, stripped, math.nan
        elif value.is_integer():  # "1.0" and "+1" are "1"; exact beyond 2**53 too.
            name = str(int(stripped) if stripped.lstrip("+-").isdecimal() else int(value))
        else:
            self.integer, name = False, repr(value)
        code = self.code_of[text] = self.code_of_name.setdefault(name, len(self.names))
        if code == len(self.names):
            self.names.append(name)
            self.values.append(value)
        if len(self.code_of) > MAX_CLASSES:
            if self.task == spec.CLASSIFICATION or not self.numeric:
                raise spec.CsvError(f"{source.where(None, 'label')}: more than {MAX_CLASSES} "
                                    f"distinct labels; classification allows at most "
                                    f"{MAX_CLASSES} classes (set task='regression' for a "
                                    f"numeric target)")
            self.overflow = self.numbers_only = True
        return code

    def _numbers(self, texts: pa.Array, source, first: int) -> np.ndarray:
        try:
            values = pc.cast(pc.utf8_trim_whitespace(texts), pa.float64()).to_numpy(
                zero_copy_only=False)
            if (np.abs(values) < FLOAT32_LIMIT).all():
                return values
        except pa.ArrowInvalid:
            pass  # A spelling pyarrow does not read, or not a number: one by one.
        values = np.empty(len(texts))
        for i, text in enumerate(texts.to_pylist()):
            values[i] = parse_number(text)
            if values[i] != values[i]:  # None: not a number.
                if is_missing(text):
                    source.fail(first + i, "label", "missing label {text}; every row needs a "
                                                    "label")
                why = ("task='regression' needs numeric labels" if self.task == spec.REGRESSION
                       else f"earlier labels are more than {MAX_CLASSES} distinct numbers (a "
                       f"regression target)")
                source.fail(first + i, "label", f"label {{text}} is not "
                                                f"{not_a_number_kind(text)}; {why}")
        return values

    def finish(self, source, num_rows: int):
        """Returns ``(task, class_names, final_code_of_code)``; the last two None for regression.

        Raises:
          spec.CsvError: For a single class, or more than `MAX_CLASSES` integer labels.
        """
        if self.task == spec.REGRESSION or (
                self.task == "auto" and self.numeric and not self.integer):
            return spec.REGRESSION, None, None
        where = source.where(None, "label")
        if self.overflow:
            raise spec.CsvError(f"{where}: more than {MAX_CLASSES} distinct integer labels; set "
                                f"task='regression' (classification allows at most "
                                f"{MAX_CLASSES} classes)")
        names = self.names
        if len(names) == 1:
            raise spec.CsvError(f"{where}: a single class {names[0]!r} in {num_rows} rows; "
                                f"classification needs at least 2 classes" +
                                ("" if math.isnan(self.values[0]) else
                                 " (set task='regression' for a numeric target)"))
        for name in names:
            if "\n" in name or "\r" in name:
                raise spec.CsvError(f"{where}: class {name[:40]!r} holds a line break; class "
                                    f"names must be one line")
        order = sorted(range(len(names)), key=(self.values if self.numeric else names).__getitem__)
        final = np.empty(len(names), np.int64)
        final[order] = np.arange(len(names))
        if self.task == "auto" and self.numeric and len(names) > _MANY_CLASSES:
            logging.warning("%s holds %d distinct integers, read as %d classes; set "
                            "task='regression' if it is a numeric target", where, len(names),
                            len(names))
        return spec.CLASSIFICATION, tuple(names[i] for i in order), final


def _check_features(x: np.ndarray, source, first: int, options, missing: np.ndarray) -> None:
    bad = ~np.isfinite(x)  # NaN (missing); inf, or too large for float32 (float32 inf).
    if not bad.any():
        return
    nan = np.isnan(x)
    fatal = bad if options.missing == "error" else bad & ~nan
    if fatal.any():
        row, position = map(int, np.argwhere(fatal)[0])
        source.fail(first + row, position, MISSING_MESSAGE if nan[row, position] else
                    "{text} is not a finite float32 number (magnitude below 3.4e38)")
    missing += nan.sum(axis=0)


def _split_codes(splits: pa.Array, source, first: int) -> np.ndarray:
    codes = pc.index_in(pc.utf8_lower(pc.utf8_trim_whitespace(splits)),
                        value_set=pa.array(spec.SPLITS)).fill_null(-1).to_numpy()
    if (codes < 0).any():
        source.fail(first + int(np.argmax(codes < 0)), "split",
                    "split {text} is not one of train, validation, test")
    return codes.astype(np.int8)


class _Buckets:
    """Rows ``(x, value, code, row)`` in random buckets: one in memory for inputs up to
    `_MEMORY_BYTES`, else files on disk, so that memory does not grow with the file."""

    def __init__(self, directory: str, input_bytes: int, num_features: int):
        self.dtype = np.dtype([("x", "<f4", (num_features,)), ("value", "<f8"),
                               ("code", "<i4"), ("row", "<i8")])
        self.in_memory = input_bytes <= _MEMORY_BYTES
        self.count = 1 if self.in_memory else min(-(-input_bytes // _BUCKET_BYTES),
                                                  _MAX_BUCKETS)
        self.paths = [storage.join(directory, f"bucket-{i:05d}") for i in range(self.count)]
        self._parts = []
        self._files = [] if self.in_memory else [tf.io.gfile.GFile(p, "wb") for p in self.paths]

    def write(self, columns: tuple, bucket: np.ndarray) -> None:
        if self.in_memory:
            self._parts.append(columns)
            return
        records = np.empty(len(bucket), self.dtype)
        for name, column in zip(self.dtype.names, columns):
            records[name] = column
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(self.count + 1))
        for file, low, high in zip(self._files, bounds, bounds[1:]):
            file.write(records[order[low:high]].tobytes())

    def close(self) -> None:
        for file in self._files:
            file.close()

    def read(self, index: int) -> tuple:
        if self.in_memory:
            return tuple(np.concatenate(column) for column in zip(*self._parts))
        with tf.io.gfile.GFile(self.paths[index], "rb") as f:
            records = np.frombuffer(f.read(), self.dtype)
        return tuple(records[name] for name in self.dtype.names)

    def remove(self, index: int) -> None:
        if not self.in_memory:
            storage.remove(self.paths[index])


def _stamp(path: str) -> tuple[int, int]:
    stat = tf.io.gfile.stat(path)
    return stat.length, stat.mtime_nsec


def _read(sources, stamps, options, buckets, labels):
    """Reads and checks every row once, writing it to a random bucket.

    Returns:
      ``(codes, given_splits, bucket_of, missing, file_starts)``: per row the class code
      (-1 when not kept), the split the files or a split column give (or None), the bucket;
      per feature the count of missing values; each file's first row number.

    Raises:
      spec.CsvError: For the first bad row.
    """
    rng = np.random.default_rng([options.split_seed, 1])
    codes, given, bucket_of, file_starts = [], [], [], []
    missing, total = np.zeros(len(sources[0].feature_names), np.int64), 0
    for file_index, source in enumerate(sources):
        file_starts.append(total)
        for x, texts, splits in source.batches():
            first, n = total - file_starts[-1], len(x)
            _check_features(x, source, first, options, missing)
            code, value = labels.add(texts, source, first)
            if splits is not None:
                given.append(_split_codes(splits, source, first))
            elif len(sources) == 3:
                given.append(np.full(n, file_index, np.int8))
            bucket_of.append(rng.integers(0, buckets.count, n, dtype=np.int16)
                             if buckets.count > 1 else np.zeros(n, np.int16))
            buckets.write((x, value, code, np.arange(total, total + n)), bucket_of[-1])
            codes.append(code)
            total += n
        if total == file_starts[-1]:
            raise spec.CsvError(f"{source.path}: no data rows")
        if _stamp(source.path) != stamps[file_index]:
            raise spec.CsvError(f"{source.path} changed while it was being prepared; run again")
    return (np.concatenate(codes), np.concatenate(given) if given else None,
            np.concatenate(bucket_of), missing, np.array(file_starts))


def _holdout_split(codes: np.ndarray, class_names, seed: int, where: str) -> np.ndarray:
    """Gives each class's ``round(0.2 * n)`` random rows to test and as many to validation."""
    counts = np.bincount(codes, minlength=len(class_names or [0]))
    rarest = int(np.argmin(counts))
    if counts[rarest] < _MIN_ROWS_PER_CLASS:
        if class_names is None:
            raise spec.CsvError(f"{where}: {len(codes)} data rows are too few for a 60/20/20 "
                                f"split: it needs at least {_MIN_ROWS_PER_CLASS}, one for each "
                                f"split")
        raise spec.CsvError(f"{where}: {len(codes)} data rows are too few for a stratified "
                            f"60/20/20 split: every class needs at least {_MIN_ROWS_PER_CLASS} "
                            f"rows, one for each split, and class {class_names[rarest]!r} has "
                            f"{counts[rarest]}; give more rows, or the splits as three files or "
                            f"a split_column")
    rng = np.random.default_rng(seed)
    split_of = np.zeros(len(codes), np.int8)
    by_class = np.argsort(codes, kind="stable")
    for low, high in zip(np.r_[0, np.cumsum(counts)[:-1]], np.cumsum(counts)):
        holdout = round(builders.HOLDOUT_FRACTION * (high - low))
        chosen = rng.choice(by_class[low:high], 2 * holdout, replace=False)
        split_of[chosen[:holdout]] = 2  # test
        split_of[chosen[holdout:]] = 1  # validation
    return split_of


def _features(num_features: int, class_names) -> tfds.features.FeaturesDict:
    label = (tfds.features.Tensor(shape=(None,), dtype=np.float32) if class_names is None
             else tfds.features.Sequence(tfds.features.ClassLabel(names=class_names)))
    return tfds.features.FeaturesDict({
        "features": tfds.features.Tensor(shape=(None, num_features), dtype=np.float32),
        "label": label,
        "row": tfds.features.Tensor(shape=(None,), dtype=np.int64,
                                    doc="Index of each row among its file's data rows."),
    })


def _lists(message: str, values: np.ndarray) -> list[bytes]:
    """One serialized ``message`` (FloatList, Int64List) per block of `BLOCK_ROWS` rows."""
    full = len(values) // BLOCK_ROWS * BLOCK_ROWS
    lists = []
    for part in (values[:full], values[full:]):
        if len(part):
            blocks = -(-len(part) // BLOCK_ROWS)
            part = part.reshape(blocks, -1)
            lists.extend(tf.io.encode_proto(np.full((blocks, 1), part.shape[1], np.int32),
                                            [part], ["value"], f"tensorflow.{message}").numpy())
    return lists


def _write_shard(path: str, x: np.ndarray, label: np.ndarray, row: np.ndarray) -> int:
    """Writes rows as TFRecords of one ``tf.train.Example`` per block; returns the blocks."""
    label_list = "float_list" if label.dtype == np.float32 else "int64_list"
    columns = zip(_lists("FloatList", x), _lists(
        "FloatList" if label_list == "float_list" else "Int64List", label),
        _lists("Int64List", row))
    blocks = 0
    with tf.io.TFRecordWriter(path) as writer:
        for features, labels, rows in columns:
            example = tf.train.Example()
            feature = example.features.feature
            feature["features"].float_list.MergeFromString(features)
            getattr(feature["label"], label_list).MergeFromString(labels)
            feature["row"].int64_list.MergeFromString(rows)
            writer.write(example.SerializeToString())
            blocks += 1
    return blocks


def _impute_means(buckets, split_of, missing, sources) -> dict[int, float]:
    """Train-split means of the features with missing values, from one pass over buckets."""
    positions = np.flatnonzero(missing)
    sums, counts = np.zeros(len(positions)), np.zeros(len(positions))
    for index in range(buckets.count):
        x, _, _, row = buckets.read(index)
        x = x[split_of[row] == 0][:, positions]
        sums += np.nansum(x, axis=0, dtype=np.float64)
        counts += (~np.isnan(x)).sum(axis=0)
    for k, position in enumerate(positions):
        if not counts[k]:
            raise spec.CsvError(f"{sources[0].where(None, int(position))}: no value in the train "
                                f"split to impute its {missing[position]} missing values from; "
                                f"exclude the column")
    return {int(p): float(s / c) for p, s, c in zip(positions, sums, counts)}


def _write_splits(directory, buckets, split_of, bucket_of, final, means, file_starts, seed):
    """Writes each bucket, shuffled, as one shard per split; returns (split infos, moments)."""
    count = buckets.count
    rows = np.bincount(split_of.astype(np.int64) * count + bucket_of, minlength=3 * count)
    shards = [np.flatnonzero(rows.reshape(3, count)[s]).tolist() for s in range(3)]
    lengths = [[] for _ in spec.SPLITS]
    features, labels = statistics.Accumulator(), statistics.Accumulator()
    rng = np.random.default_rng([seed, 2])
    for index in range(count):
        xs, values, codes, rows = buckets.read(index)
        order = rng.permutation(len(rows))
        split = split_of[rows[order]]
        for code, name in enumerate(spec.SPLITS):
            chosen = order[split == code]
            if not len(chosen):
                continue
            x, row = xs[chosen], rows[chosen]
            for position, mean in means.items():
                x[np.isnan(x[:, position]), position] = mean
            label = (values[chosen].astype(np.float32) if final is None
                     else final[codes[chosen]])
            row -= file_starts[np.searchsorted(file_starts, row, side="right") - 1]
            path = _template(directory, name).sharded_filepath(
                shard_index=shards[code].index(index), num_shards=len(shards[code]))
            lengths[code].append(_write_shard(os.fspath(path), x, label, row))
            for start in range(0, len(x) * (code == 0), 1 << 16):  # Train: statistics.
                features.add(x[start:start + (1 << 16)])
                labels.add(label[start:start + (1 << 16)])
        buckets.remove(index)
    infos = [tfds.core.SplitInfo(name=name, shard_lengths=lengths[code], num_bytes=0,
                                 filename_template=_template(directory, name))
             for code, name in enumerate(spec.SPLITS)]
    return infos, statistics.Moments(features.count, features.mean, features.variance,
                                     float(labels.mean), float(labels.variance))


def _template(directory: str, split: str) -> tfds.core.ShardedFileTemplate:
    return tfds.core.ShardedFileTemplate(data_dir=directory, dataset_name=NAME, split=split,
                                         filetype_suffix="tfrecord")


_SPLIT_METHODS = {"stratified": "stratified 60/20/20 split (seed {seed})",
                  "random": "random 60/20/20 split (seed {seed})",
                  "files": "one file per split", "column": "split by column {column!r}"}


def _write_dataset(kind, sources, digests, stamps, key, options, directory) -> None:
    """Reads, checks and splits the files, and writes the dataset into ``directory``."""
    source = sources[0]
    size = sum(tf.io.gfile.stat(s.path).length for s in sources)
    buckets = _Buckets(directory, size, len(source.feature_names))
    labels = _Labels(options.task)
    try:
        codes, given, bucket_of, missing, file_starts = _read(sources, stamps, options,
                                                              buckets, labels)
    finally:
        buckets.close()
    task, class_names, final = labels.finish(source, len(codes))
    layout = getattr(source, "layout", None)
    where = source.where(None, "label")
    if given is not None:
        split_of, method = given, "files" if len(sources) == 3 else "column"
        empty = [s for s, n in zip(spec.SPLITS, np.bincount(given, minlength=3)) if not n]
        if empty:
            raise spec.CsvError(f"{source.where(None, 'split')}: no rows for the {empty[0]} "
                                f"split; each split needs at least one row")
    elif task == spec.CLASSIFICATION:
        split_of = _holdout_split(final[codes], class_names, options.split_seed, where)
        method = "stratified"
    else:
        split_of = _holdout_split(np.zeros(len(codes), np.int64), None, options.split_seed,
                                  where)
        method = "random"
    means = _impute_means(buckets, split_of, missing, sources) if missing.any() else {}
    infos, moments = _write_splits(directory, buckets, split_of, bucket_of, final, means,
                                   file_starts, options.split_seed)
    names = source.feature_names
    metadata = {
        "source": kind, "paths": [s.path for s in sources], "sha256": list(digests),
        "content_hash": key, "feature_names": list(names), "label_column": source.label_name,
        "label_index": source.label_index, "task": task,
        "class_names": None if class_names is None else list(class_names),
        "header": None if layout is None else layout.has_header,
        "excluded_columns": [] if layout is None else [layout.names[i] for i in layout.excluded],
        "split": method, "split_column": (None if layout is None or layout.split is None
                                          else layout.names[layout.split]),
        "split_seed": options.split_seed,
        "imputed_means": {names[p]: mean for p, mean in means.items()},
        "options": dataclasses.asdict(options), "rows_per_example": BLOCK_ROWS,
        "num_rows": dict(zip(spec.SPLITS, np.bincount(split_of, minlength=3).tolist())),
    }
    how = _SPLIT_METHODS[method].format(seed=options.split_seed,
                                        column=metadata["split_column"])
    tfds.folder_dataset.write_metadata(
        data_dir=directory, features=_features(len(names), class_names), split_infos=infos,
        version=VERSION, check_data=False, supervised_keys=("features", "label"),
        description=(f"{task.capitalize()} data prepared from {', '.join(metadata['paths'])} "
                     f"({kind}); {how}. Each example is a block of up to {BLOCK_ROWS} rows."),
        metadata=tfds.core.MetadataDict(metadata))
    statistics.remember(directory, spec.SPLITS[0], moments)


def read_builder(directory: str) -> tfds.core.DatasetBuilder:
    try:
        return tfds.builder_from_directory(directory)
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise storage.CorruptFileError(f"{directory} is not a readable prepared dataset "
                                       f"({reason}); delete it to prepare again") from None


def is_prepared(directory: str) -> bool:
    return storage.exists(storage.join(directory, "dataset_info.json"))


def _publish(write, directory: str) -> None:
    """Runs ``write(temporary)`` and renames the result to ``directory``; another process
    that published the same key first wins (its data is the same)."""
    storage.makedirs(directory.rsplit("/", 1)[0] if not storage.is_local(directory)
                     else os.path.dirname(directory))
    temporary = storage.temporary_sibling(directory, VERSION)
    try:
        storage.makedirs(temporary)
        write(temporary)
        storage.rename_exclusive(temporary, directory)
    except FileExistsError:
        storage.remove_tree(temporary)
        if not is_prepared(directory):
            raise storage.CorruptFileError(f"{directory} exists but holds no prepared "
                                           f"dataset; delete it to prepare again") from None
        logging.info("%s was prepared concurrently; reusing it", directory)
    except BaseException:
        storage.remove_tree(temporary)
        raise


def _prepare(kind: str, paths, options: spec.CsvOptions | None, data_dir: str | None
             ) -> tfds.core.DatasetBuilder:
    options = spec.CsvOptions() if options is None else options
    paths = (paths,) if isinstance(paths, (str, os.PathLike)) else tuple(paths)
    paths = tuple(os.fspath(path) for path in paths)
    if len(paths) not in (1, 3):
        raise ValueError(f"give one file or three (train, validation, test), not "
                         f"{len(paths)}: {', '.join(paths)}")
    if len(paths) == 3 and options.split_column is not None:
        raise ValueError("split_column does not apply to three split files: give one file "
                         "with a split column, or three files")
    for path in paths:
        if storage.isdir(path):
            raise spec.CsvError(f"{path}: is a folder; give a file")
        if not storage.exists(path):
            raise spec.CsvError(f"{path}: no such file")
    if kind == "npz":
        for option in ("label_column", "header", "exclude_columns", "split_column",
                       "delimiter"):
            if getattr(options, option) != getattr(spec.CsvOptions(), option):
                raise ValueError(f"{option} does not apply to .npz files (their arrays x and "
                                 f"y are the features and the labels)")
    stamps = [_stamp(path) for path in paths]  # Unchanged at the end: the data is the hash's.
    digests = [file_sha256(path) for path in paths]
    payload = json.dumps({"format": PREPARATION_FORMAT, "kind": kind, "sha256": digests,
                          "options": dataclasses.asdict(options)}, sort_keys=True)
    key = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
    stem = re.sub(r"\.[^./]*$", "", paths[0].rstrip("/").rsplit("/", 1)[-1]).lower()
    stem = re.sub(r"[^a-z0-9]+", "_", stem).strip("_")[:40] or "data"
    directory = storage.join(data_dir or default_data_dir(), NAME, f"{stem}_{key}", VERSION)
    if is_prepared(directory):
        logging.info("Reusing %s prepared in %s", ", ".join(paths), directory)
        return read_builder(directory)
    start = time.perf_counter()
    if kind == "csv":
        sources = [CsvFile(path, layout, options)
                   for path, layout in zip(paths, read_layouts(paths, options))]
    else:
        sources = [NpzFile(path) for path in paths]
        for source in sources[1:]:
            if len(source.feature_names) != len(sources[0].feature_names):
                raise spec.CsvError(f"{source.path}: {len(source.feature_names)} features per "
                                    f"row, but {paths[0]} has "
                                    f"{len(sources[0].feature_names)}; separate split files "
                                    f"need the same columns")
    _publish(lambda temporary: _write_dataset(kind, sources, digests, stamps, key, options,
                                                temporary),
             directory)
    logging.info("Prepared %s in %s in %.1f s", ", ".join(paths), directory,
                 time.perf_counter() - start)
    return read_builder(directory)


def prepare_csv(paths: str | Sequence[str], options: spec.CsvOptions | None = None,
                data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """Validates CSV files, prepares them once, and returns a builder that reads them.

    The files are hashed (one read each). If ``data_dir`` holds the data of these bytes and
    options, nothing else is read. Otherwise one more read checks every row and writes it
    to a random bucket on disk; nothing is published until every row has passed.

    Args:
      paths: One CSV file (split 60/20/20, or by `CsvOptions.split_column`) or three (train,
        validation, test), as ``tf.io.gfile`` paths.
      options: How to read the files; None for the defaults.
      data_dir: TFDS data directory (local or ``gs://``; not ``ram://``, which TFDS does
        not know); None for `default_data_dir`.

    Returns:
      A read-only ``tfds.core.DatasetBuilder`` with splits train, validation and test, each
      example a block of up to `BLOCK_ROWS` rows: ``features`` (float32, rows x features in
      file order), ``label`` (a sequence of ``ClassLabel``, or float32) and ``row`` (each
      row's index among its file's data rows). ``info.metadata`` holds ``num_rows`` (per
      split), ``rows_per_example``, ``feature_names``, ``label_column``, ``label_index``,
      ``task``, ``class_names`` (or None), ``paths``, ``sha256``, ``content_hash`` (the
      folder key), ``header``, ``excluded_columns``, ``split`` (``"stratified"``,
      ``"random"``, ``"files"`` or ``"column"``), ``split_column``, ``split_seed``,
      ``imputed_means`` (feature name -> mean) and ``options``. The train split's statistics
      are stored beside it (`selu_zoo.datasets.statistics`).

    Raises:
      spec.CsvError: For a bad file, in one line naming the file, and the column and line
        where there are.
      ValueError: If the paths or options do not fit together.
      storage.StorageError: If a file cannot be read or ``data_dir`` cannot be written.
    """
    return _prepare("csv", paths, options, data_dir)


def prepare_npz(paths: str | Sequence[str], options: spec.CsvOptions | None = None,
                data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """`prepare_csv` for ``.npz`` files holding arrays ``x`` (rows) and ``y`` (labels).

    Only the options ``task``, ``missing`` (NaN is missing) and ``split_seed`` apply.
    Features are named ``x_<i>`` (``x`` flattened per row, C order) and the label ``y``.

    Raises:
      spec.CsvError: For a bad file, naming it and the row (``x[17]``).
      ValueError: If an option that does not apply to .npz files is set.
    """
    return _prepare("npz", paths, options, data_dir)


def prepare(name: str, options: spec.CsvOptions | None = None, data_dir: str | None = None
            ) -> tfds.core.DatasetBuilder:
    """Prepares a ``csv:...`` or ``npz:...`` dataset name (see `spec.parse_spec`)."""
    paths = spec.parse_spec(name)
    return (prepare_csv if spec.is_csv(name) else prepare_npz)(paths, options, data_dir)
