"""A CSV file: its columns, its rows read in batches by pyarrow, and where a bad value is.

pyarrow parses the rows (quoted fields, CRLF, a BOM, blank lines; whole for files up to
`WHOLE_FILE_BYTES`, streamed in `BLOCK_BYTES` blocks beyond, and always for ``.gz``/``.bz2``).
Python's ``csv`` module reads the header and, when something is wrong, finds the line and
the field to name: that pass runs only on the way to an error.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import io
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import tensorflow as tf

from selu_zoo import storage
from selu_zoo.datasets.tabular import spec

BLOCK_BYTES = 4 << 20
WHOLE_FILE_BYTES = 256 << 20
# Doubles of smaller magnitude round to a finite float32; larger ones become inf.
FLOAT32_LIMIT = 2.0**128 * (1 - 2.0**-25)
# Field texts read as missing values (compared after strip() and lower()).
MISSING_TOKENS = frozenset(
    {"", "?", "na", "n/a", "#n/a", "<na>", "nan", "-nan", "null", "none"})
# pyarrow matches missing values exactly: their usual spellings. Others (" NA") go the way
# of any text that is not a number: the error path, which applies MISSING_TOKENS.
_NULLS = sorted({f(t) for t in MISSING_TOKENS for f in (str, str.upper, str.capitalize)})
_DECOMPRESSORS = {".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
                  ".bz2": lambda raw: bz2.BZ2File(raw, mode="rb")}
_LISTED_COLUMNS = 20


class _Raw(io.RawIOBase):
    """A raw stream over a ``GFile`` (which lacks what ``io`` needs to buffer it)."""

    def __init__(self, file):
        super().__init__()
        self._file = file

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._file.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self):
        self._file.close()
        super().close()


def open_bytes(path: str):
    """The file's bytes, decompressed for ``.gz`` and ``.bz2``."""
    raw = io.BufferedReader(_Raw(tf.io.gfile.GFile(path, "rb")), 1 << 20)
    suffix = next((s for s in _DECOMPRESSORS if path.lower().endswith(s)), None)
    return _DECOMPRESSORS[suffix](raw) if suffix else raw


def quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING_TOKENS


def parse_number(text: str) -> float | None:
    """The float a text holds, or None unless it is a number that float32 holds finitely."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if abs(value) < FLOAT32_LIMIT else None  # False for NaN too.


def not_a_number_kind(text: str) -> str:
    """``"a number"``, or what a number such as ``inf`` or ``1e39`` fails to be."""
    try:
        float(text)
    except ValueError:
        return "a number"
    return "a finite float32 number (magnitude below 3.4e38)"


def _records(path: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of each non-blank record, by Python's csv module.

    Raises:
      spec.CsvError: If the file is not UTF-8 or not valid CSV.
    """
    with storage.reported("read", path), io.TextIOWrapper(
            open_bytes(path), encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            for fields in reader:
                if len(fields) > 1 or (fields and fields[0].strip()):
                    yield reader.line_num, fields
        except UnicodeDecodeError:
            with open_bytes(path) as lines:  # The decoder fails on whole chunks.
                line = next(i for i, text in enumerate(lines, 1) if not _is_utf8(text))
            raise spec.CsvError(f"{path} line {line}: not UTF-8 text; save the file as "
                                f"UTF-8") from None
        except csv.Error as error:
            raise spec.CsvError(f"{path} line {reader.line_num}: not valid CSV "
                                f"({error})") from None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def detect_delimiter(path: str) -> str:
    """The one of `spec.DELIMITERS` the first non-blank line has most of outside quotes."""
    with storage.reported("read", path), open_bytes(path) as raw:
        line = next((line for line in raw if line.strip()), b"")
    unquoted = line.decode("utf-8-sig", errors="replace").split('"')[::2]
    counts = {d: sum(part.count(d) for part in unquoted) for d in spec.DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


@dataclasses.dataclass(frozen=True)
class Layout:
    """The columns of a CSV file and what each one is."""

    delimiter: str
    has_header: bool
    header_line: int  # The line of the first record (the header, when there is one).
    names: tuple[str, ...]  # Header names; "column_<i>" where there is none.
    label: int = -1
    split: int | None = None
    features: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()

    def describe(self, index: int) -> str:
        if self.has_header:
            return f"column {quoted(self.names[index])} (index {index})"
        return f"column {index}"

    def columns_text(self) -> str:
        names = self.names
        if not self.has_header:
            return (f"the file has no header and {len(names)} columns "
                    f"(indices 0 to {len(names) - 1})")
        shown = ", ".join(f"{i} {quoted(n)}" for i, n in enumerate(names[:_LISTED_COLUMNS]))
        more = len(names) - _LISTED_COLUMNS
        return f"columns: {shown}" + (f", and {more} more" if more > 0 else "")


def _read_head(path: str, options: spec.CsvOptions) -> Layout:
    """Reads the first two records: the delimiter, whether there is a header, the names."""
    delimiter = detect_delimiter(path) if options.delimiter == "auto" else options.delimiter
    records = _records(path, delimiter)
    first = [record for record, _ in zip(records, range(2))]
    records.close()
    if not first:
        raise spec.CsvError(f"{path}: the file is empty; it needs one row per example, after "
                            f"an optional header row")
    (line, fields), second = first[0], (first[1][1] if len(first) > 1 else None)
    has_header = options.header
    if has_header == "auto":
        has_header = (any(map(_is_name, fields)) if second is None else
                      any(_is_name(a) and parse_number(b) is not None
                          for a, b in zip(fields, second)))
    if has_header and second is None:
        how = "read as a header" if options.header == "auto" else "a header (header=True)"
        raise spec.CsvError(f"{path}: no data rows: its only row (line {line}) is {how}")
    names = tuple((name.strip() or f"column_{i}") if has_header else f"column_{i}"
                  for i, name in enumerate(fields))
    return Layout(delimiter, has_header, line, names)


def _is_name(text: str) -> bool:
    return parse_number(text) is None and not is_missing(text)


def _resolve(path: str, layout: Layout, column, what: str) -> int:
    if isinstance(column, str):
        column = column.strip()
        matches = [i for i, name in enumerate(layout.names) if name == column]
        if len(matches) > 1:
            raise spec.CsvError(f"{path}: the {what} {column!r} is ambiguous: columns "
                                f"{', '.join(map(str, matches))} have that name; give an index")
        if matches:
            return matches[0]
        if not (column.isascii() and column.isdecimal()):
            raise spec.CsvError(f"{path}: no {what} {column!r}; {layout.columns_text()}")
        column = int(column)
    if column >= len(layout.names):
        raise spec.CsvError(f"{path}: no {what} {column}; {layout.columns_text()}")
    return column


def read_layouts(paths: Sequence[str], options: spec.CsvOptions) -> list[Layout]:
    """Reads each file's header and gives every column its role, from the first file's names.

    Raises:
      spec.CsvError: For an empty file, an option that names no column or two roles for one
        column, no feature column left, or split files whose columns differ.
    """
    heads = [_read_head(path, options) for path in paths]
    path, head = paths[0], heads[0]
    label = (len(head.names) - 1 if options.label_column is None else
             _resolve(path, head, options.label_column, "label column"))
    split = (None if options.split_column is None else
             _resolve(path, head, options.split_column, "split column"))
    excluded = tuple(sorted({_resolve(path, head, column, "column to exclude")
                             for column in options.exclude_columns}))
    if split == label:
        raise spec.CsvError(f"{path}: split_column and label_column both name "
                            f"{head.describe(label)}")
    if label in excluded:
        raise spec.CsvError(f"{path}: exclude_columns holds the label, {head.describe(label)}")
    features = tuple(i for i in range(len(head.names)) if i not in {label, split, *excluded})
    if not features:
        raise spec.CsvError(f"{path}: no feature columns are left besides the label "
                            f"{head.describe(label)}; {head.columns_text()}")
    for other, layout in zip(paths[1:], heads[1:]):
        if len(layout.names) != len(head.names):
            raise spec.CsvError(f"{other}: {len(layout.names)} columns, but {path} has "
                                f"{len(head.names)}; separate split files need the same columns")
        for i, (mine, theirs) in enumerate(zip(layout.names, head.names)):
            if layout.has_header and head.has_header and mine != theirs:
                raise spec.CsvError(f"{other}: column {i} is {quoted(mine)}, but in {path} it "
                                    f"is {quoted(theirs)}; separate split files need the same "
                                    f"columns")
    return [dataclasses.replace(layout, names=head.names if not layout.has_header else
                                layout.names, label=label, split=split, features=features,
                                excluded=excluded) for layout in heads]


class CsvFile:
    """One CSV file with its layout: the rows in batches, and messages that locate a value."""

    def __init__(self, path: str, layout: Layout, options: spec.CsvOptions):
        self.path, self.layout, self.options = path, layout, options
        self.feature_names = tuple(layout.names[i] for i in layout.features)
        self.label_name, self.label_index = layout.names[layout.label], layout.label

    def batches(self) -> Iterator[tuple[np.ndarray, pa.Array, pa.Array | None]]:
        """Yields ``(features, labels, splits)`` of consecutive rows.

        Features are float32 (inf where float32 cannot hold a value) with NaN for a missing value; labels and split-column values
        are pyarrow strings (splits None without a split column).

        Raises:
          spec.CsvError: For the first row that cannot be read (see `diagnose`).
        """
        layout = self.layout
        names = [f"c{i}" for i in range(len(layout.names))]
        types = {names[i]: pa.float64() for i in layout.features}
        types.update({names[i]: pa.string() for i in (layout.label, layout.split)
                      if i is not None})
        read = pa_csv.ReadOptions(column_names=names, block_size=BLOCK_BYTES,
                                  skip_rows_after_names=layout.header_line
                                  if layout.has_header else 0)
        parse = pa_csv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True,
                                    invalid_row_handler=_skip_blank)
        convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(types),
                                        null_values=_NULLS, strings_can_be_null=False)
        plain = not self.path.lower().endswith(tuple(_DECOMPRESSORS))
        whole = plain and tf.io.gfile.stat(self.path).length <= WHOLE_FILE_BYTES
        with storage.reported("read", self.path), open_bytes(self.path) as raw:
            # pyarrow reads local files itself (in parallel), others through tf.io.gfile.
            stream = self.path if plain and storage.is_local(self.path) else pa.PythonFile(raw, "r")
            try:
                if whole:
                    reader = pa_csv.read_csv(stream, read, parse, convert).to_batches()
                else:
                    reader = pa_csv.open_csv(stream, read, parse, convert)
                for batch in reader:
                    x = np.empty((batch.num_rows, len(layout.features)), np.float32)
                    for position, i in enumerate(layout.features):
                        x[:, position] = batch.column(names[i]).to_numpy(zero_copy_only=False)
                    yield (x, batch.column(names[layout.label]),
                           None if layout.split is None else batch.column(names[layout.split]))
            except (pa.ArrowInvalid, UnicodeDecodeError) as error:
                self.diagnose()
                reason = str(error).splitlines()[0]
                raise spec.CsvError(f"{self.path}: not readable as CSV ({reason})") from None

    def _data_records(self) -> Iterator[tuple[int, list[str]]]:
        records = _records(self.path, self.layout.delimiter)
        if self.layout.has_header:
            next(records)
        return records

    def diagnose(self) -> None:
        """Reads every row with Python's csv module; raises `spec.CsvError` at the first bad one.

        Raises:
          spec.CsvError: Naming the line and column: a row of another length, a feature that
            is not a finite float32 number, or a missing one with ``missing="error"``.
        """
        layout, width = self.layout, len(self.layout.names)
        for record, (line, fields) in enumerate(self._data_records()):
            if len(fields) != width:
                raise spec.CsvError(f"{self.path} line {line}: {len(fields)} fields, but line "
                                    f"{layout.header_line} has {width}; every row needs the "
                                    f"same number of fields")
            for position, column in enumerate(layout.features):
                text = fields[column]
                if is_missing(text):
                    if self.options.missing == "error":
                        self.fail(record, position, MISSING_MESSAGE)
                elif parse_number(text) is None:
                    self.fail(record, position, self._not_a_number(line, "{text}", text))

    def _not_a_number(self, line: int, shown: str, text: str) -> str:
        message = (f"{shown} is not {not_a_number_kind(text)}; feature columns must "
                   f"be numeric (exclude_columns leaves a column out, label_column makes it "
                   f"the label)")
        if line == self.layout.header_line and self.options.header == "auto":
            message += f"; if line {line} is a header, set header=True"
        return message

    def _column(self, column) -> int:
        return {"label": self.layout.label, "split": self.layout.split}.get(
            column, self.layout.features[column] if isinstance(column, int) else None)

    def where(self, record: int | None, column) -> str:
        """``"PATH line N, column 'x' (index 3)"``; ``column`` is a feature position,
        ``"label"`` or ``"split"``; without ``record``, ``"PATH, column ..."``."""
        described = self.layout.describe(self._column(column))
        if record is None:
            return f"{self.path}, {described}"
        line, _ = next(r for i, r in enumerate(self._data_records()) if i == record)
        return f"{self.path} line {line}, {described}"

    def fail(self, record: int, column, message: str) -> None:
        """Raises `spec.CsvError` for a value; ``{text}`` in ``message`` is its quoted text."""
        line, fields = next(r for i, r in enumerate(self._data_records()) if i == record)
        text = quoted(fields[self._column(column)])
        raise spec.CsvError(f"{self.path} line {line}, "
                            f"{self.layout.describe(self._column(column))}: "
                            f"{message.replace('{text}', text)}")


# The message of a missing feature value ({text}: the value as the file spells it).
MISSING_MESSAGE = ("missing value {text}; set config.missing_values='mean' "
                   "(--config.missing_values=mean) to impute missing features with their "
                   "train-split mean, or exclude the column (config.exclude_columns)")


def _skip_blank(row) -> str:
    return "skip" if not row.text.strip() else "error"
