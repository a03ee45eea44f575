"""An ``.npz`` file's arrays ``x`` (features) and ``y`` (labels), in the form `CsvFile` gives."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pyarrow as pa
import tensorflow as tf

from selu_zoo import storage
from selu_zoo.datasets.tabular import spec

_BATCH_ROWS = 1 << 16


class NpzFile:
    """One ``.npz`` file with arrays ``x`` (rows of numbers) and ``y`` (numbers or strings).

    The arrays are read whole: an ``.npz`` is what NumPy held in memory.

    Raises:
      spec.CsvError: From the constructor, if the file is not an npz of a 2-D or larger
        numeric x and a 1-D y of the same length.
    """

    def __init__(self, path: str):
        self.path = path
        with storage.reported("read", path), tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        try:
            arrays = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, zipfile.BadZipFile):
            raise spec.CsvError(f"{path}: not an .npz file") from None
        for name in ("x", "y"):
            if name not in arrays:
                names = ", ".join(arrays.files) or "none"
                raise spec.CsvError(f"{path}: no array {name!r} (arrays: {names}); an .npz "
                                    f"dataset needs x and y")
        try:
            x, y = arrays["x"], arrays["y"]
        except ValueError:  # Pickled objects.
            raise spec.CsvError(f"{path}: x and y must be arrays of numbers (y: or of "
                                f"strings), not of objects") from None
        if x.ndim < 2 or x.dtype.kind not in "biuf":
            raise spec.CsvError(f"{path}: x has shape {x.shape} and dtype {x.dtype}; it needs "
                                f"one row of numbers per example (2-D or more)")
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1 or y.dtype.kind not in "biufUS":
            raise spec.CsvError(f"{path}: y has shape {y.shape} and dtype {y.dtype}; it needs "
                                f"one number or string per example (1-D)")
        if len(y) != len(x):
            raise spec.CsvError(f"{path}: x has {len(x)} rows but y has {len(y)}")
        self._x, self._y = x.reshape(len(x), -1), y
        self.feature_names = tuple(f"x_{i}" for i in range(self._x.shape[1]))
        self.label_name, self.label_index = "y", 0

    def batches(self):
        """Yields ``(features, labels, None)`` like `CsvFile.batches`; labels as texts."""
        for start in range(0, len(self._x), _BATCH_ROWS):
            y = self._y[start:start + _BATCH_ROWS]
            labels = pa.array(y.astype(str) if y.dtype.kind in "US" else y).cast(pa.string())
            with np.errstate(over="ignore"):
                x = self._x[start:start + _BATCH_ROWS].astype(np.float32)
            yield x, labels, None

    def where(self, record: int | None, column) -> str:
        if column == "label":
            return f"{self.path}, y" if record is None else f"{self.path}, y[{record}]"
        if record is None:
            return f"{self.path}, x feature {column}"
        return f"{self.path}, x[{record}] (feature {column})"

    def fail(self, record: int, column, message: str) -> None:
        value = self._y[record] if column == "label" else self._x[record, column]
        raise spec.CsvError(f"{self.where(record, column)}: "
                            f"{message.replace('{text}', repr(str(value)))}")
