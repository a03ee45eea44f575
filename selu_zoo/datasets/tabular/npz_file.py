"""An ``.npz`` file's arrays ``x`` (features) and ``y`` (labels), in the form `CsvFile` gives."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pyarrow as pa

from selu_zoo import storage
from selu_zoo.datasets.tabular import spec


class NpzFile:
    """One ``.npz`` file of arrays ``x`` (a row of numbers per example) and ``y`` (a number or
    string per example), read whole.

    Raises:
      spec.CsvError: From the constructor, if the file is not such an ``.npz``.
    """

    def __init__(self, path: str):
        self.path, self.label_name, self.label = path, "y", 0
        try:
            arrays = np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False)
        except (ValueError, zipfile.BadZipFile):
            raise spec.CsvError(f"{path}: not an .npz file") from None
        missing = [name for name in ("x", "y") if name not in arrays]
        if missing:
            raise spec.CsvError(f"{path}: no array {missing[0]!r} (arrays: "
                                f"{', '.join(arrays.files) or 'none'}); an .npz dataset needs x "
                                f"and y")
        x, y = arrays["x"], arrays["y"]
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if not (x.ndim >= 2 and x.dtype.kind in "biuf"):
            raise spec.CsvError(f"{path}: x has shape {x.shape} and dtype {x.dtype}; it needs "
                                f"one row of numbers per example (2-D or more)")
        if not (y.ndim == 1 and y.dtype.kind in "biufUS"):
            raise spec.CsvError(f"{path}: y has shape {y.shape} and dtype {y.dtype}; it needs "
                                f"one number or string per example (1-D)")
        if len(y) != len(x):
            raise spec.CsvError(f"{path}: x has {len(x)} rows but y has {len(y)}")
        self._x, self._y = x.reshape(len(x), -1), y
        self.feature_names = tuple(f"x_{i}" for i in range(self._x.shape[1]))

    def batches(self):
        """Yields ``(features, labels, None)`` once, as `CsvFile.batches`; labels as texts."""
        with np.errstate(over="ignore"):
            x = self._x.astype(np.float32)
        y = self._y.astype(str) if self._y.dtype.kind in "US" else self._y
        yield x, pa.array(y).cast(pa.string()), None

    def where(self, column, row: int | None = None) -> str:
        """``"PATH, x[ROW] (feature 3)"``, ``"PATH, y[ROW]"``, or without a row ``"PATH, y"``."""
        if column == "label":
            return f"{self.path}, y" + ("" if row is None else f"[{row}]")
        return f"{self.path}, x" + (f" feature {column}" if row is None else
                                    f"[{row}] (feature {column})")

    def fail(self, index: int, column, message: str) -> None:
        """Raises `spec.CsvError` for a row's value; ``{text}`` in ``message`` is the value."""
        value = self._y[index] if column == "label" else self._x[index, column]
        raise spec.CsvError(f"{self.where(column, index)}: "
                            f"{message.replace('{text}', repr(str(value)))}")
