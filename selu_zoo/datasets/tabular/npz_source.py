"""An ``.npz`` file's arrays ``x`` (features) and ``y`` (labels), streamed row by row."""

from __future__ import annotations

import contextlib
from typing import Iterator
import zipfile

import numpy as np
import tensorflow as tf

from selu_zoo import storage
from selu_zoo.datasets.tabular import reading
from selu_zoo.datasets.tabular import spec


class NpzSource:
    """One ``.npz`` file with arrays ``x`` (rows of features) and ``y`` (labels)."""

    def __init__(self, path: str, digest: str, options: spec.CsvOptions):
        self.path, self.digest, self.options = path, digest, options
        with self._open() as arrays:
            _, (self.num_rows, *feature_shape), _ = arrays["x"]
        width = int(np.prod(feature_shape, dtype=np.int64))
        self.feature_names = tuple(f"x_{i}" for i in range(width))
        self.label_name, self.label_index = "y", 0

    @contextlib.contextmanager
    def _open(self):
        """Yields ``{"x": (stream, shape, dtype), "y": ...}``, streams after the headers.

        Raises:
          spec.CsvError: If the file is not an npz of a 2-D or larger numeric x and a 1-D y of
            the same length.
        """
        with storage.reported("read", self.path), contextlib.ExitStack() as stack:
            try:
                archive = stack.enter_context(
                    zipfile.ZipFile(stack.enter_context(tf.io.gfile.GFile(self.path, "rb"))))
            except zipfile.BadZipFile:
                raise spec.CsvError(f"{self.path}: not an .npz file (not a zip archive)") from None
            streams = {name: stack.enter_context(self._member(archive, name))
                       for name in ("x", "y")}
            (x_shape, x_dtype), (y_shape, y_dtype) = (
                self._header(name, streams[name]) for name in ("x", "y"))
            if len(x_shape) < 2 or x_dtype.kind not in "biuf":
                raise spec.CsvError(f"{self.path}: x has shape {x_shape} and dtype {x_dtype}; it "
                                    f"needs one row of numbers per example (2-D or more)")
            if len(y_shape) == 2 and y_shape[1] == 1:
                y_shape = y_shape[:1]
            if len(y_shape) != 1 or y_dtype.kind not in "biufUS":
                raise spec.CsvError(f"{self.path}: y has shape {y_shape} and dtype {y_dtype}; it "
                                    f"needs one number or string per example (1-D)")
            if y_shape[0] != x_shape[0]:
                raise spec.CsvError(f"{self.path}: x has {x_shape[0]} rows but y has {y_shape[0]}")
            yield {"x": (streams["x"], x_shape, x_dtype),
                   "y": (streams["y"], y_shape[:1], y_dtype)}

    def _member(self, archive: zipfile.ZipFile, name: str):
        try:
            return archive.open(f"{name}.npy")
        except KeyError:
            arrays = ", ".join(n.removesuffix(".npy") for n in archive.namelist()) or "none"
            raise spec.CsvError(f"{self.path}: no array {name!r} (arrays: {arrays}); an .npz "
                                f"dataset needs x and y") from None

    def _header(self, name: str, stream) -> tuple[tuple[int, ...], np.dtype]:
        try:
            version = np.lib.format.read_magic(stream)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}[version]
            shape, fortran_order, dtype = read(stream)
        except (KeyError, ValueError):
            raise spec.CsvError(f"{self.path}: {name} is not a NumPy array file (version 1 or 2)"
                           ) from None
        if fortran_order and len(shape) > 1:
            raise spec.CsvError(f"{self.path}: {name} is in Fortran order; save it with "
                                f"np.ascontiguousarray({name})")
        return tuple(shape), dtype

    def label_at(self, where: int | None) -> str:
        return f"{self.path}, y" if where is None else f"{self.path}, y[{where}]"

    def feature_at(self, where: int, position: int) -> str:
        return f"{self.path}, x[{where}] (feature {position})"

    def feature_column(self, position: int) -> str:
        return f"{self.path}, x feature {position}"

    def _read(self, array, count: int) -> np.ndarray:
        """The next ``count`` rows of an array from `_open`."""
        stream, shape, dtype = array
        row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        data = stream.read(count * row_bytes)
        if len(data) != count * row_bytes:
            raise spec.CsvError(f"{self.path}: an array ends early (the file is truncated)")
        return np.frombuffer(data, dtype).reshape(count, *shape[1:])

    def rows(self) -> Iterator[tuple[int, str, list[float], None, bool]]:
        """Yields every row like `CsvSource.rows`; labels are texts (integers without ``.0``).

        Raises:
          spec.CsvError: For an infinite feature, or a NaN one with ``missing="error"``.
        """
        with self._open() as arrays:
            row_bytes = max(1, arrays["x"][2].itemsize * len(self.feature_names))
            rows_per_chunk = max(1, reading.READ_CHUNK // row_bytes)
            for start in range(0, self.num_rows, rows_per_chunk):
                count = min(rows_per_chunk, self.num_rows - start)
                x = self._read(arrays["x"], count).reshape(count, -1).astype(np.float64)
                labels = _label_texts(self._read(arrays["y"], count))
                self._check_finite(x, start)
                gaps = np.isnan(x).any(axis=1).tolist()
                for offset, (values, label) in enumerate(zip(x.tolist(), labels)):
                    yield start + offset, label, values, None, gaps[offset]
        if reading.file_sha256(self.path) != self.digest:
            raise spec.CsvError(f"{self.path} changed while it was being prepared; run again")

    def _check_finite(self, x: np.ndarray, start: int) -> None:
        too_big = np.abs(x) >= reading.FLOAT32_LIMIT  # inf included; False for NaN.
        bad = too_big | (np.isnan(x) if self.options.missing == "error" else False)
        if bad.any():
            row, position = map(int, np.argwhere(bad)[0])
            if too_big[row, position]:
                raise spec.CsvError(f"{self.feature_at(start + row, position)}: "
                                    f"{x[row, position]} is not {reading.not_a_number_kind('inf')}")
            raise spec.CsvError(f"{self.feature_at(start + row, position)}: missing value (NaN); "
                                f"set config.missing_values='mean' "
                                f"(--config.missing_values=mean) to impute missing features "
                                f"with their train-split mean")


def _label_texts(y: np.ndarray) -> list[str]:
    """Labels from an npz ``y`` chunk as the texts a CSV field would hold."""
    if y.dtype.kind in "biu":
        return [str(value) for value in y.astype(np.int64).tolist()]
    if y.dtype.kind == "f":
        return [repr(value) for value in y.tolist()]
    if y.dtype.kind == "S":
        return [value.decode("utf-8", "replace") for value in y.tolist()]
    return y.tolist()


