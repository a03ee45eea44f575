"""Writing a validated plan as a TFDS dataset: shuffled TFRecord shards and metadata."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from selu_zoo import storage
from selu_zoo.datasets.tabular import planning
from selu_zoo.datasets.tabular import spec

# TFDS name of every prepared file dataset; it names the folder under data_dir.
NAME = "selu_zoo_csv"
VERSION = "1.0.0"

# The writer shuffles each split through buckets of about this many bytes, at most
# _MAX_BUCKETS per split; a bucket is shuffled in memory, then written as one shard.
_BUCKET_BYTES = 16 << 20
_MAX_BUCKETS = 256


def _features(num_features: int, class_names: tuple[str, ...] | None
              ) -> tfds.features.FeaturesDict:
    if class_names is None:
        label = tfds.features.Scalar(dtype=np.float32, doc="Regression target.")
    else:
        label = tfds.features.ClassLabel(names=class_names)
    return tfds.features.FeaturesDict({
        "features": tfds.features.Tensor(shape=(num_features,), dtype=np.float32),
        "label": label,
        "row": tfds.features.Scalar(
            dtype=np.int64, doc="Line in the CSV file (1-based, header counted), or index "
                                "in the .npz arrays."),
    })


def _example_bytes(values: list[float], label: float | int, row: int,
                   float_label: bool) -> bytes:
    """One serialized ``tf.train.Example`` in the layout `_features` describes.

    Built directly: TFDS's per-example encoder costs about 15 times as much.
    """
    example = tf.train.Example()
    feature = example.features.feature
    feature["features"].float_list.value.extend(values)
    if float_label:
        feature["label"].float_list.value.append(label)
    else:
        feature["label"].int64_list.value.append(label)
    feature["row"].int64_list.value.append(row)
    return example.SerializeToString()


def _bucket_counts(split_of: np.ndarray, num_features: int) -> list[int]:
    rows = np.bincount(split_of, minlength=len(spec.SPLITS))
    row_bytes = 4 * num_features + 48  # A generous estimate of one serialized example.
    return [int(min(_MAX_BUCKETS, max(1, math.ceil(n * row_bytes / _BUCKET_BYTES))))
            for n in rows]


def _destinations(split_of: np.ndarray, buckets: list[int], seed: int) -> memoryview:
    """The bucket (numbered across splits) of every row, drawn with a seeded generator.

    Returns:
      A memoryview of int16 bucket numbers (indexing it gives Python ints).
    """
    rng = np.random.default_rng([seed, 1])
    offsets = np.cumsum([0] + buckets[:-1])
    destination = np.empty(len(split_of), np.int16)
    for code, count in enumerate(buckets):
        rows = split_of == code
        destination[rows] = offsets[code] + rng.integers(0, count, int(rows.sum()),
                                                         dtype=np.int16)
    return memoryview(destination)


def _label_encoder(plan: planning.Plan, source):
    if plan.task == spec.REGRESSION:
        return float
    code_of_text = plan.code_of_text

    def encode(text: str) -> int:
        code = code_of_text.get(text)
        if code is None:  # The scan saw every label; the file changed since.
            raise spec.CsvError(f"{source.path} changed while it was being prepared; run again")
        return code

    return encode


def _write_buckets(sources: Sequence, plan: planning.Plan, paths: list[str],
                   destination: memoryview) -> None:
    """Streams every row into its bucket file, imputing missing features."""
    means, float_label = plan.means, plan.task == spec.REGRESSION
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    try:
        row = 0
        for source in sources:
            encode = _label_encoder(plan, source)
            for where, label, values, _, careful in source.rows():
                if careful and means:
                    values = [means[p] if v != v else v for p, v in enumerate(values)]
                writers[destination[row]].write(
                    _example_bytes(values, encode(label), where, float_label))
                row += 1
    finally:
        for writer in writers:
            writer.close()


def _shuffle_bucket(bucket: str, shard: str, rng: np.random.Generator) -> tuple[int, int]:
    """Writes a bucket's records to a shard in random order; returns (records, bytes)."""
    records = []
    for batch in tf.data.TFRecordDataset(bucket).batch(8192).as_numpy_iterator():
        records.extend(batch.tolist())
    with tf.io.TFRecordWriter(shard) as writer:
        for index in rng.permutation(len(records)):
            writer.write(records[index])
    storage.remove(bucket)
    return len(records), sum(map(len, records))


def _write_splits(sources: Sequence, plan: planning.Plan, directory: str, seed: int
                  ) -> list[tfds.core.SplitInfo]:
    """Writes every split's shards into ``directory``, each in a seeded random order.

    Rows go to random buckets on disk (about 16 MiB each, at most 256 per split, so larger
    only for splits over 4 GiB); each bucket is then shuffled in memory and written as one
    shard. So memory does not grow with the file, and a bounded shuffle buffer mixes even
    a file sorted by label.
    """
    buckets = _bucket_counts(plan.split_of, len(sources[0].feature_names))
    bucket_dir = storage.makedirs(storage.join(directory, "buckets"))
    bucket_paths = [storage.join(bucket_dir, f"{i:05d}.tfrecord") for i in range(sum(buckets))]
    _write_buckets(sources, plan, bucket_paths,
                   _destinations(plan.split_of, buckets, seed))
    rng = np.random.default_rng([seed, 2])
    split_infos, first = [], 0
    for split, count in zip(spec.SPLITS, buckets):
        template = tfds.core.ShardedFileTemplate(
            data_dir=directory, dataset_name=NAME, split=split, filetype_suffix="tfrecord")
        lengths, num_bytes = [], 0
        for shard in range(count):
            records, size = _shuffle_bucket(
                bucket_paths[first + shard],
                os.fspath(template.sharded_filepath(shard_index=shard, num_shards=count)),
                rng)
            lengths.append(records)
            num_bytes += size
        split_infos.append(tfds.core.SplitInfo(
            name=split, shard_lengths=lengths, num_bytes=num_bytes,
            filename_template=template))
        first += count
    storage.remove_tree(bucket_dir)
    return split_infos


def _metadata(kind: str, sources: Sequence, digests: Sequence[str], key: str,
              plan: planning.Plan, options: spec.CsvOptions) -> dict:
    source = sources[0]
    layout = getattr(source, "layout", None)
    return {
        "source": kind,
        "paths": [s.path for s in sources],
        "sha256": list(digests),
        "content_hash": key,
        "feature_names": list(source.feature_names),
        "label_column": source.label_name,
        "label_index": source.label_index,
        "task": plan.task,
        "class_names": None if plan.class_names is None else list(plan.class_names),
        "header": None if layout is None else layout.has_header,
        "excluded_columns": [] if layout is None else [layout.names[i] for i in
                                                       layout.excluded],
        "split": plan.split_method,
        "split_column": (None if layout is None or layout.split is None else
                         layout.names[layout.split]),
        "split_seed": options.split_seed,
        "imputed_means": {source.feature_names[p]: mean for p, mean in plan.means.items()},
        "options": dataclasses.asdict(options),
    }


_SPLIT_METHODS = {
    "stratified": "stratified 60/20/20 split (seed {seed})",
    "random": "random 60/20/20 split (seed {seed})",
    "files": "one file per split",
    "column": "split by column {column!r}",
}


def write_dataset(kind: str, sources: Sequence, digests: Sequence[str], key: str,
                   plan: planning.Plan, options: spec.CsvOptions, directory: str) -> None:
    """Writes the shards and TFDS's metadata files into ``directory``."""
    metadata = _metadata(kind, sources, digests, key, plan, options)
    split_infos = _write_splits(sources, plan, directory, options.split_seed)
    how = _SPLIT_METHODS[plan.split_method].format(seed=options.split_seed,
                                                   column=metadata["split_column"])
    info = tfds.core.DatasetInfo(
        builder=tfds.core.DatasetIdentity(
            name=NAME, version=tfds.core.Version(VERSION), data_dir=directory,
            module_name=__name__, config_name=key),
        description=(f"{plan.task.capitalize()} data prepared from "
                     f"{', '.join(metadata['paths'])} ({kind}); {how}."),
        features=_features(len(metadata["feature_names"]), plan.class_names),
        supervised_keys=("features", "label"),
        metadata=tfds.core.MetadataDict(metadata),
    )
    info.set_file_format(tfds.core.FileFormat.TFRECORD)
    info.set_splits(tfds.core.SplitDict(split_infos))
    info.write_to_directory(directory)


def read_builder(directory: str) -> tfds.core.DatasetBuilder:
    try:
        return tfds.builder_from_directory(directory)
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise storage.CorruptFileError(f"{directory} is not a readable prepared dataset "
                                       f"({reason}); delete it to prepare again") from None


def is_prepared(directory: str) -> bool:
    return storage.exists(storage.join(directory, "dataset_info.json"))


def publish(write, directory: str) -> None:
    """Runs ``write(temporary)`` and renames the result to ``directory``.

    Another process may publish the same dataset first; its data is the same (it is a
    function of the key), so it is kept and this one's is dropped.

    Raises:
      storage.CorruptFileError: If ``directory`` exists but holds no dataset.
    """
    parent = os.path.dirname(directory) if storage.is_local(directory) else \
        directory.rsplit("/", 1)[0]
    storage.makedirs(parent)
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


