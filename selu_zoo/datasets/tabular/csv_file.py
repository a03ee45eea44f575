"""A CSV file: its layout, its rows in batches read by pyarrow (whole up to `WHOLE_FILE_BYTES`,
else streamed in `BLOCK_BYTES` blocks), and the line of a bad value, found by Python's ``csv``."""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import tensorflow as tf

from selu_zoo import storage
from selu_zoo.datasets.tabular import spec

BLOCK_BYTES, WHOLE_FILE_BYTES = 4 << 20, 256 << 20
FLOAT32_LIMIT = 2.0**128 * (1 - 2.0**-25)  # Doubles below it round to a finite float32.
# Field texts read as missing values (compared after strip() and lower()).
MISSING_TOKENS = frozenset({"", "?", "na", "n/a", "#n/a", "<na>", "nan", "-nan", "null", "none"})
_OPEN = {".gz": lambda raw: gzip.GzipFile(fileobj=raw), ".bz2": bz2.BZ2File}
MISSING_MESSAGE = ("missing value {text}; set config.missing_values='mean' "
                   "(--config.missing_values=mean) to impute missing features with their "
                   "train-split mean, or exclude the column (config.exclude_columns)")


class _Raw(io.RawIOBase):
    """A ``GFile`` as a raw stream (what ``io`` needs to buffer and decode it)."""

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
    """The file's bytes, decompressed for ``.gz`` and ``.bz2`` (by the name)."""
    raw = io.BufferedReader(_Raw(tf.io.gfile.GFile(path, "rb")), 1 << 20)
    suffix = next((s for s in _OPEN if path.lower().endswith(s)), None)
    return _OPEN[suffix](raw) if suffix else raw


def quoted(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


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
        return "a finite float32 number (magnitude below 3.4e38)"
    except ValueError:
        return "a number"


def records(path: str, delimiter: str):
    """``(line, fields)`` of each non-blank record, read by Python's csv module.

    Raises:
      spec.CsvError: If the file is not UTF-8 (naming the line) or not valid CSV.
    """
    with storage.reported("read", path), io.TextIOWrapper(
            open_bytes(path), encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            for fields in reader:
                if len(fields) > 1 or (fields and fields[0].strip()):
                    yield reader.line_num, fields
        except UnicodeDecodeError:  # Raised for a whole chunk: find the line.
            with open_bytes(path) as lines:
                line = next(i for i, data in enumerate(lines, 1)
                            if data.decode("utf-8", "replace").encode() != data)
            raise spec.CsvError(f"{path} line {line}: not UTF-8 text; save the file as "
                                f"UTF-8") from None
        except csv.Error as error:
            raise spec.CsvError(f"{path} line {reader.line_num}: not valid CSV "
                                f"({error})") from None


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
        return (f"column {quoted(self.names[index])} (index {index})" if self.has_header
                else f"column {index}")

    def columns_text(self) -> str:
        names = self.names
        if not self.has_header:
            return (f"the file has no header and {len(names)} columns (indices 0 to "
                    f"{len(names) - 1})")
        more = f", and {len(names) - 20} more" if len(names) > 20 else ""
        return "columns: " + ", ".join(f"{i} {quoted(n)}" for i, n in enumerate(names[:20])) \
            + more


def _head(path: str, options: spec.CsvOptions) -> Layout:
    """The delimiter, the header and the names, from the first two records."""
    delimiter = options.delimiter
    if delimiter == "auto":
        with storage.reported("read", path), open_bytes(path) as raw:
            line = next((line for line in raw if line.strip()), b"")
        unquoted = line.decode("utf-8-sig", "replace").split('"')[::2]
        counts = {d: sum(part.count(d) for part in unquoted) for d in spec.DELIMITERS}
        delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    reader = records(path, delimiter)
    first = [record for record, _ in zip(reader, range(2))]
    reader.close()
    if not first:
        raise spec.CsvError(f"{path}: the file is empty; it needs one row per example, after "
                            f"an optional header row")
    (line, fields), second = first[0], (first[1][1] if len(first) > 1 else None)
    has_header = options.header
    if has_header == "auto":
        def is_name(text):
            return parse_number(text) is None and not is_missing(text)

        has_header = (any(map(is_name, fields)) if second is None else any(
            is_name(a) and parse_number(b) is not None for a, b in zip(fields, second)))
    if has_header and second is None:
        how = "read as a header" if options.header == "auto" else "a header (header=True)"
        raise spec.CsvError(f"{path}: no data rows: its only row (line {line}) is {how}")
    return Layout(delimiter, has_header, line, tuple(
        (name.strip() or f"column_{i}") if has_header else f"column_{i}"
        for i, name in enumerate(fields)))


def _resolve(path: str, layout: Layout, column, what: str) -> int:
    if isinstance(column, str):
        column = column.strip()
        matches = [i for i, name in enumerate(layout.names) if name == column]
        if len(matches) > 1:
            raise spec.CsvError(f"{path}: the {what} {column!r} is ambiguous: columns "
                                f"{', '.join(map(str, matches))} have that name; give an index")
        if not matches and not (column.isascii() and column.isdecimal()):
            raise spec.CsvError(f"{path}: no {what} {column!r}; {layout.columns_text()}")
        column = matches[0] if matches else int(column)
    if column >= len(layout.names):
        raise spec.CsvError(f"{path}: no {what} {column}; {layout.columns_text()}")
    return column


def read_layouts(paths, options: spec.CsvOptions) -> list[Layout]:
    """Reads each file's header; gives every column its role, from the first file's names.

    Raises:
      spec.CsvError: For an empty file, an option that names no column or two roles for one
        column, no feature column left, or split files whose columns differ.
    """
    heads = [_head(path, options) for path in paths]
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
    return [dataclasses.replace(layout, names=head.names, label=label, split=split,
                                features=features, excluded=excluded) for layout in heads]


def _numbers(texts: pa.Array) -> pa.Array:
    """Texts as float32: `MISSING_TOKENS` as nulls, inf where float32 cannot hold a value.

    Raises:
      pa.ArrowInvalid: For a text that is not a number.
    """
    try:
        return pc.cast(texts, pa.float32())
    except pa.ArrowInvalid:  # Spaces, or a missing value: the slower way.
        text = pc.utf8_trim_whitespace(texts)
        missing = pc.is_in(pc.utf8_lower(text), value_set=pa.array(sorted(MISSING_TOKENS)))
        return pc.cast(pc.if_else(missing, pa.scalar(None, pa.string()), text), pa.float32())


class CsvFile:
    """One CSV file with its layout: its rows in batches, and messages that locate a value."""

    def __init__(self, path: str, layout: Layout, options: spec.CsvOptions):
        self.path, self.layout, self.options = path, layout, options
        self.feature_names = tuple(layout.names[i] for i in layout.features)
        self.label_name, self.label_index = layout.names[layout.label], layout.label

    def batches(self):
        """Yields ``(features, labels, splits)`` of consecutive rows: float32 features (NaN
        where missing, inf where float32 cannot hold a value), the label and split-column
        texts as pyarrow strings (splits None without a split column).

        Raises:
          spec.CsvError: For the first row pyarrow cannot read (see `diagnose`).
        """
        layout, plain = self.layout, not self.path.lower().endswith(tuple(_OPEN))
        names = [f"c{i}" for i in range(len(layout.names))]
        roles = [*layout.features, layout.label, *([] if layout.split is None else [layout.split])]
        options = (pa_csv.ReadOptions(column_names=names, block_size=BLOCK_BYTES,
                                      skip_rows_after_names=layout.header_line * layout.has_header),
                   pa_csv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True,
                                       invalid_row_handler=lambda row: "error" if row.text.strip()
                                       else "skip"),
                   pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                         include_columns=[names[i] for i in roles],
                                         strings_can_be_null=False))
        count = len(layout.features)
        with storage.reported("read", self.path), open_bytes(self.path) as raw:
            # pyarrow reads local files itself (in parallel), others through tf.io.gfile.
            source = self.path if plain and storage.is_local(self.path) else pa.PythonFile(raw, "r")
            try:
                if plain and tf.io.gfile.stat(self.path).length <= WHOLE_FILE_BYTES:
                    reader = pa_csv.read_csv(source, *options).to_batches()
                else:
                    reader = pa_csv.open_csv(source, *options)
                for batch in reader:
                    x = np.empty((batch.num_rows, count), np.float32)
                    for position in range(count):
                        x[:, position] = _numbers(batch.column(position))
                    splits = None if layout.split is None else batch.column(count + 1)
                    yield x, batch.column(count), splits
            except pa.ArrowInvalid as error:
                self.diagnose()
                raise spec.CsvError(f"{self.path}: not readable as CSV "
                                    f"({str(error).splitlines()[0]})") from None

    def _rows(self):
        """``(index, (line, fields))`` of every record, data rows indexed from 0."""
        return enumerate(records(self.path, self.layout.delimiter), -self.layout.has_header)

    def diagnose(self) -> None:
        """Reads every row with Python's csv module; raises `spec.CsvError` at the first row
        of another length, or feature that is not a finite float32 number or is missing
        (with ``missing="error"``)."""
        width, header_line = len(self.layout.names), self.layout.header_line
        for index, (line, fields) in self._rows():
            if index >= 0 and len(fields) != width:
                raise spec.CsvError(f"{self.path} line {line}: {len(fields)} fields, but line "
                                    f"{header_line} has {width}; every row needs the same "
                                    f"number of fields")
            for position, text in enumerate(fields[i] for i in self.layout.features
                                            if index >= 0):
                if is_missing(text) and self.options.missing == "error":
                    self.fail(index, position, MISSING_MESSAGE)
                if not is_missing(text) and parse_number(text) is None:
                    hint = (f"; if line {line} is a header, set header=True" if line ==
                            header_line and self.options.header == "auto" else "")
                    self.fail(index, position, f"{{text}} is not {not_a_number_kind(text)}; "
                              f"feature columns must be numeric (exclude_columns leaves a column "
                              f"out, label_column makes it the label){hint}")

    def _index(self, column) -> int:
        """The file column of a feature position, ``"label"`` or ``"split"``."""
        return getattr(self.layout, column) if isinstance(column, str) else \
            self.layout.features[column]

    def where(self, column, line: int | None = None) -> str:
        """``"PATH[ line N], column 'x' (index 3)"`` of a feature position, ``"label"`` or
        ``"split"``."""
        return f"{self.path}{'' if line is None else f' line {line}'}, " \
               f"{self.layout.describe(self._index(column))}"

    def fail(self, index: int, column, message: str) -> None:
        """Raises `spec.CsvError` for a row's value; ``{text}`` in ``message`` is its text."""
        line, fields = next(record for i, record in self._rows() if i == index)
        text = quoted(fields[self._index(column)])
        raise spec.CsvError(f"{self.where(column, line)}: {message.replace('{text}', text)}")
