"""`prepare_csv` and `prepare_npz`: hash, reuse or validate, write, and return a builder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from typing import Sequence

from absl import logging
import tensorflow_datasets as tfds

from selu_zoo import storage
from selu_zoo.datasets.tabular import csv_source
from selu_zoo.datasets.tabular import npz_source
from selu_zoo.datasets.tabular import planning
from selu_zoo.datasets.tabular import reading
from selu_zoo.datasets.tabular import spec
from selu_zoo.datasets.tabular import writer

# Bump when the same files and options would be prepared differently: the key changes.
PREPARATION_FORMAT = 1


def default_data_dir() -> str:
    """TFDS's data directory: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _folder_name(path: str, key: str) -> str:
    stem = re.sub(r"\.[^./]*$", "", path.rstrip("/").rsplit("/", 1)[-1]).lower()
    stem = re.sub(r"[^a-z0-9]+", "_", stem).strip("_")[:40] or "data"
    return f"{stem}_{key}"


def _content_key(kind: str, digests: Sequence[str], options: spec.CsvOptions) -> str:
    """16 hex digits of a SHA-256 over the format, the files' digests and every option."""
    payload = json.dumps({"format": PREPARATION_FORMAT, "kind": kind, "sha256": list(digests),
                          "options": dataclasses.asdict(options)}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _prepared_dir(data_dir: str, first_path: str, key: str) -> str:
    """``<data_dir>/selu_zoo_csv/<stem>_<key>/1.0.0``; ``stem`` is from the file's name."""
    return storage.join(data_dir, writer.NAME, _folder_name(first_path, key), writer.VERSION)


def _check_paths(paths) -> tuple[str, ...]:
    paths = (paths,) if isinstance(paths, (str, os.PathLike)) else tuple(paths)
    paths = tuple(os.fspath(path) for path in paths)
    if len(paths) not in (1, 3):
        raise ValueError(f"give one file or three (train, validation, test), not "
                         f"{len(paths)}: {', '.join(paths)}")
    for path in paths:
        if storage.isdir(path):
            raise spec.CsvError(f"{path}: is a folder; give a file")
        if not storage.exists(path):
            raise spec.CsvError(f"{path}: no such file")
    return paths


def _csv_sources(paths, digests, options) -> list[csv_source.CsvSource]:
    """Reads each file's header and assigns the columns' roles from the first file.

    Raises:
      spec.CsvError: As `read_header` and `assign_roles`, or if the files' columns differ.
    """
    headers = [csv_source.read_header(path, options) for path in paths]
    roles = csv_source.assign_roles(paths[0], headers[0], options)
    csv_source.check_same_columns(paths, headers)
    layouts = [roles] + [
        dataclasses.replace(roles, has_header=h.has_header, names=h.names,
                            header_names=h.header_names, reference_line=h.reference_line)
        for h in headers[1:]]
    return [csv_source.CsvSource(path, digest, layout, options)
            for path, digest, layout in zip(paths, digests, layouts)]


def _npz_sources(paths, digests, options) -> list[npz_source.NpzSource]:
    defaults = spec.CsvOptions()
    for option in ("label_column", "header", "exclude_columns", "split_column", "delimiter"):
        if getattr(options, option) != getattr(defaults, option):
            raise ValueError(f"{option} does not apply to .npz files (their arrays x and y "
                             f"are the features and the labels)")
    sources = [npz_source.NpzSource(path, digest, options) for path, digest in zip(paths, digests)]
    for source in sources[1:]:
        if len(source.feature_names) != len(sources[0].feature_names):
            raise spec.CsvError(f"{source.path}: {len(source.feature_names)} features per row, "
                                f"but {sources[0].path} has {len(sources[0].feature_names)}; "
                                f"separate split files need the same columns")
    return sources


def _prepare(kind: str, paths, options: spec.CsvOptions | None, data_dir: str | None
             ) -> tfds.core.DatasetBuilder:
    options = spec.CsvOptions() if options is None else options
    paths = _check_paths(paths)
    if len(paths) == 3 and options.split_column is not None:
        raise ValueError("split_column does not apply to three split files: give one file "
                         "with a split column, or three files")
    data_dir = os.fspath(data_dir) if data_dir is not None else default_data_dir()
    digests = [reading.file_sha256(path) for path in paths]
    key = _content_key(kind, digests, options)
    directory = _prepared_dir(data_dir, paths[0], key)
    if writer.is_prepared(directory):
        logging.info("Reusing %s prepared in %s", ", ".join(paths), directory)
        return writer.read_builder(directory)
    start = time.perf_counter()
    sources = (_csv_sources if kind == "csv" else _npz_sources)(paths, digests, options)
    plan = planning.make_plan(sources, options)
    writer.publish(lambda temporary: writer.write_dataset(
        kind, sources, digests, key, plan, options, temporary), directory)
    logging.info("Prepared %s in %s in %.1f s", ", ".join(paths), directory,
                 time.perf_counter() - start)
    return writer.read_builder(directory)


def prepare_csv(paths: str | Sequence[str], options: spec.CsvOptions | None = None,
                data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """Validates CSV files, prepares them once, and returns a builder that reads them.

    The files are hashed (one streaming read each). If ``data_dir`` already holds the
    data of these bytes and options, nothing else is read. Otherwise every row is
    validated in one streaming pass (a second one computes train-split means for
    ``missing="mean"``) before anything is written, then one more pass writes the
    dataset; another process preparing the same files at the same time is tolerated.

    Args:
      paths: One CSV file (split 60/20/20, or by `CsvOptions.split_column`) or three (train,
        validation, test), as ``tf.io.gfile`` paths.
      options: How to read the files; None for the defaults.
      data_dir: TFDS data directory (local or a TFDS-supported URL such as ``gs://``;
        ``ram://`` is not); None for `default_data_dir`.

    Returns:
      A ``tfds.core.DatasetBuilder`` (read-only) with splits train, validation and test.
      Its ``info.features`` hold ``features`` (float32, one value per feature column in
      file order), ``label`` (a ``ClassLabel`` of the class names, or a float32 scalar)
      and ``row``; ``info.supervised_keys`` is ``("features", "label")``;
      ``info.metadata`` holds ``feature_names``, ``label_column`` (name), ``label_index``,
      ``task``, ``class_names`` (or None), ``paths``, ``sha256`` (of each file),
      ``content_hash`` (the folder key), ``header``, ``excluded_columns``, ``split``
      (``"stratified"``, ``"random"``, ``"files"`` or ``"column"``), ``split_column``,
      ``split_seed``, ``imputed_means`` (feature name -> mean) and ``options``. The paths
      are those of the first preparation: a copy of the same bytes reuses it.

    Raises:
      spec.CsvError: For a bad file (see the module docstring), with one line that names the
        file, and the column and line where there are.
      ValueError: If the paths or options do not fit together.
      storage.StorageError: If a file cannot be read or ``data_dir`` cannot be written.
    """
    return _prepare("csv", paths, options, data_dir)


def prepare_npz(paths: str | Sequence[str], options: spec.CsvOptions | None = None,
                data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """`prepare_csv` for ``.npz`` files holding arrays ``x`` (rows) and ``y`` (labels).

    ``x`` is numeric with one row per example (more than two dimensions are flattened,
    C order); ``y`` is 1-D numbers or strings (not pickled objects). Only the options
    ``task``, ``missing`` (NaN is missing) and ``split_seed`` apply. Features are named
    ``x_<i>`` and the label ``y``; ``row`` is the index in the arrays.

    Raises:
      spec.CsvError: For a bad file, naming it and the row (``x[17]``).
      ValueError: If an option that does not apply to .npz files is set.
    """
    return _prepare("npz", paths, options, data_dir)


def prepare(name: str, options: spec.CsvOptions | None = None, data_dir: str | None = None
            ) -> tfds.core.DatasetBuilder:
    """Prepares a ``csv:...`` or ``npz:...`` dataset name (see `parse_spec`).

    Raises:
      As `parse_spec` and `prepare_csv`.
    """
    paths = spec.parse_spec(name)
    return (prepare_csv if spec.is_csv(name) else prepare_npz)(paths, options, data_dir)
