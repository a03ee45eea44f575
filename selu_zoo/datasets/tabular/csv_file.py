"""A CSV file: its columns and their roles, its rows in batches read by pyarrow (whole up to
`WHOLE_FILE_BYTES`, else streamed), and the line of a bad value, found by Python's ``csv``."""

from __future__ import annotations

import bz2
import csv
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
# pyarrow reads their usual spellings as nulls; others (" NA") take the slower way, as texts.
_NULLS = sorted({f(t) for t in MISSING_TOKENS for f in (str, str.upper, str.capitalize)})
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
    def lines(raw):
        for number, data in enumerate(raw, 1):
            try:
                yield data.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise spec.CsvError(f"{path} line {number}: not UTF-8 text; save the file as "
                                    f"UTF-8") from None

    with storage.reported("read", path), open_bytes(path) as raw:
        reader = csv.reader(lines(raw), delimiter=delimiter)
        try:
            for fields in reader:
                if len(fields) > 1 or (fields and fields[0].strip()):
                    yield reader.line_num, fields
        except csv.Error as error:
            raise spec.CsvError(f"{path} line {reader.line_num}: not valid CSV "
                                f"({error})") from None


class CsvFile:
    """One CSV file: its columns and what each one is, its rows in batches, and messages that
    locate a value. `open_files` gives the columns their roles.

    Raises:
      spec.CsvError: From the constructor, for an empty file or one with a header only.
    """

    def __init__(self, path: str, options: spec.CsvOptions):
        self.path, self.options, self.delimiter = path, options, options.delimiter
        if self.delimiter == "auto":
            with storage.reported("read", path), open_bytes(path) as raw:
                line = next((line for line in raw if line.strip()), b"")
            unquoted = line.decode("utf-8-sig", "replace").split('"')[::2]
            counts = {d: sum(part.count(d) for part in unquoted) for d in spec.DELIMITERS}
            self.delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
        reader = records(path, self.delimiter)
        first = [record for record, _ in zip(reader, range(2))]
        reader.close()
        if not first:
            raise spec.CsvError(f"{path}: the file is empty; it needs one row per example, "
                                f"after an optional header row")
        (self.header_line, fields), second = first[0], (first[1][1] if first[1:] else None)
        self.has_header = options.header
        if options.header == "auto":
            def is_name(text):
                return parse_number(text) is None and not is_missing(text)

            self.has_header = (any(map(is_name, fields)) if second is None else any(
                is_name(a) and parse_number(b) is not None for a, b in zip(fields, second)))
        if self.has_header and second is None:
            how = "read as a header" if options.header == "auto" else "a header (header=True)"
            raise spec.CsvError(f"{path}: no data rows: its only row (line {self.header_line}) "
                                f"is {how}")
        self.names = tuple((name.strip() or f"column_{i}") if self.has_header else
                           f"column_{i}" for i, name in enumerate(fields))
        self.label, self.split, self.features, self.excluded = len(fields) - 1, None, (), ()

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

    def resolve(self, column, what: str) -> int:
        """The index of a column given by name or index; raises `spec.CsvError` if none."""
        if isinstance(column, str):
            column = column.strip()
            matches = [i for i, name in enumerate(self.names) if name == column]
            if len(matches) > 1:
                raise spec.CsvError(f"{self.path}: the {what} {column!r} is ambiguous: columns "
                                    f"{', '.join(map(str, matches))} have that name; give an "
                                    f"index")
            if not matches and not (column.isascii() and column.isdecimal()):
                raise spec.CsvError(f"{self.path}: no {what} {column!r}; {self.columns_text()}")
            column = matches[0] if matches else int(column)
        if column >= len(self.names):
            raise spec.CsvError(f"{self.path}: no {what} {column}; {self.columns_text()}")
        return column

    def batches(self, texts: bool = False):
        """Yields ``(features, labels, splits)`` of consecutive rows: float32 features (NaN
        where missing, inf where float32 cannot hold a value), the label and split-column
        texts as pyarrow strings (splits None without a split column). Features are read as
        ``texts``, with values that may span lines, first for a streamed file, or after a
        file read whole did not parse.

        Raises:
          spec.CsvError: For the first row that is not valid CSV, has another number of
            fields, or has a feature that is not a number.
        """
        plain = not self.path.lower().endswith(tuple(_OPEN))
        whole = plain and tf.io.gfile.stat(self.path).length <= WHOLE_FILE_BYTES
        texts = texts or not whole
        names = [f"c{i}" for i in range(len(self.names))]
        types = dict.fromkeys(names, pa.string())
        types.update({names[i]: pa.float32() for i in self.features if not texts})
        roles = [*self.features, self.label, *([] if self.split is None else [self.split])]
        options = (pa_csv.ReadOptions(column_names=names, block_size=BLOCK_BYTES,
                                      skip_rows_after_names=self.header_line * self.has_header),
                   # A quoted newline breaks pyarrow's parallel read of a whole file
                   # ("parser got out of sync with chunker"): it is read again as texts.
                   pa_csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=texts,
                                       invalid_row_handler=lambda row: "error" if row.text.strip()
                                       else "skip"),
                   pa_csv.ConvertOptions(column_types=types, null_values=_NULLS,
                                         include_columns=[names[i] for i in roles],
                                         strings_can_be_null=False))
        count, first = len(self.features), 0
        with storage.reported("read", self.path), open_bytes(self.path) as raw:
            # pyarrow reads local files itself (in parallel), others through tf.io.gfile.
            source = self.path if plain and storage.is_local(self.path) else pa.PythonFile(raw, "r")
            try:
                reader = (pa_csv.read_csv(source, *options).to_batches() if whole else
                          pa_csv.open_csv(source, *options))
                for batch in reader:
                    x = np.empty((batch.num_rows, count), np.float32)
                    for position in range(count):
                        column = batch.column(position)
                        x[:, position] = self._numbers(column, first, position) if texts else column
                    yield x, batch.column(count), (None if self.split is None
                                                   else batch.column(count + 1))
                    first += batch.num_rows
            except pa.ArrowInvalid as error:
                if not texts:  # Read whole: nothing was yielded yet.
                    yield from self.batches(texts=True)
                    return
                for index, (line, fields) in self._rows():  # Find the line.
                    if index >= 0 and len(fields) != len(self.names):
                        raise spec.CsvError(f"{self.path} line {line}: {len(fields)} fields, but "
                                            f"line {self.header_line} has {len(self.names)}; "
                                            f"every row needs the same number of fields")
                raise spec.CsvError(f"{self.path}: not readable as CSV "
                                    f"({str(error).splitlines()[0]})") from None

    def _numbers(self, texts: pa.Array, first: int, position: int) -> pa.Array:
        """A feature's texts as float32: `MISSING_TOKENS` as nulls, inf where float32 cannot
        hold a value; raises `spec.CsvError` for a text that is not a number."""
        try:
            return pc.cast(texts, pa.float32())
        except pa.ArrowInvalid:  # Spaces, missing values or not numbers: the slower way.
            trimmed = pc.utf8_trim_whitespace(texts)
        missing = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING_TOKENS)))
        try:
            return pc.cast(pc.if_else(missing, pa.scalar(None, pa.string()), trimmed),
                           pa.float32())
        except pa.ArrowInvalid:
            row, text = next((row, text) for row, text in enumerate(texts.to_pylist())
                             if not is_missing(text) and parse_number(text) is None)
            hint = ("; if the first row is a header, set header=True" if first + row == 0 and
                    self.options.header == "auto" else "")
            self.fail(first + row, position, f"{{text}} is not {not_a_number_kind(text)}; "
                      f"feature columns must be numeric (exclude_columns leaves a column out, "
                      f"label_column makes it the label){hint}")

    def _rows(self):
        """``(index, (line, fields))`` of every record, data rows indexed from 0."""
        return enumerate(records(self.path, self.delimiter), -self.has_header)

    def _index(self, column) -> int:
        """The file column of a feature position, ``"label"`` or ``"split"``."""
        return getattr(self, column) if isinstance(column, str) else self.features[column]

    def where(self, column, line: int | None = None) -> str:
        """``"PATH[ line N], column 'x' (index 3)"`` of a feature position, ``"label"`` or
        ``"split"``."""
        return (f"{self.path}{'' if line is None else f' line {line}'}, "
                f"{self.describe(self._index(column))}")

    def fail(self, index: int, column, message: str) -> None:
        """Raises `spec.CsvError` for a row's value; ``{text}`` in ``message`` is its text."""
        line, fields = next(record for i, record in self._rows() if i == index)
        text = quoted(fields[self._index(column)])
        raise spec.CsvError(f"{self.where(column, line)}: {message.replace('{text}', text)}")


def open_files(paths, options: spec.CsvOptions) -> list[CsvFile]:
    """Reads each file's header; gives every column its role, from the first file's names.

    Raises:
      spec.CsvError: For an empty file, an option that names no column or two roles for one
        column, no feature column left, or split files whose columns differ.
    """
    files = [CsvFile(path, options) for path in paths]
    head = files[0]
    if options.label_column is not None:
        head.label = head.resolve(options.label_column, "label column")
    if options.split_column is not None:
        head.split = head.resolve(options.split_column, "split column")
    head.excluded = tuple(sorted({head.resolve(column, "column to exclude")
                                  for column in options.exclude_columns}))
    if head.split == head.label:
        raise spec.CsvError(f"{head.path}: split_column and label_column both name "
                            f"{head.describe(head.label)}")
    if head.label in head.excluded:
        raise spec.CsvError(f"{head.path}: exclude_columns holds the label, "
                            f"{head.describe(head.label)}")
    head.features = tuple(i for i in range(len(head.names))
                          if i not in {head.label, head.split, *head.excluded})
    if not head.features:
        raise spec.CsvError(f"{head.path}: no feature columns are left besides the label "
                            f"{head.describe(head.label)}; {head.columns_text()}")
    for other in files[1:]:
        if len(other.names) != len(head.names):
            raise spec.CsvError(f"{other.path}: {len(other.names)} columns, but {head.path} has "
                                f"{len(head.names)}; separate split files need the same columns")
        for i, (mine, theirs) in enumerate(zip(other.names, head.names)):
            if other.has_header and head.has_header and mine != theirs:
                raise spec.CsvError(f"{other.path}: column {i} is {quoted(mine)}, but in "
                                    f"{head.path} it is {quoted(theirs)}; separate split files "
                                    f"need the same columns")
    for file in files:
        file.names, file.label, file.split = head.names, head.label, head.split
        file.features, file.excluded = head.features, head.excluded
        file.feature_names = tuple(head.names[i] for i in head.features)
        file.label_name = head.names[head.label]
    return files
