"""A CSV file's columns (header, label, split, features) and its rows as numbers."""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator, Sequence

from selu_zoo.datasets.tabular import reading
from selu_zoo.datasets.tabular import spec

_LISTED_COLUMNS = 20


# ---------------------------------------------------------------------------------------
# CSV layout: header, names and the roles of the columns.


@dataclasses.dataclass(frozen=True)
class _Layout:
    """The columns of a CSV file and what each one is."""

    has_header: bool
    names: tuple[str, ...]  # Header names ("column_<i>" where there is none or it is empty).
    header_names: tuple[str, ...] | None
    label: int
    split: int | None
    features: tuple[int, ...]
    excluded: tuple[int, ...]
    reference_line: int  # The line whose field count every row must have.

    def describe(self, index: int) -> str:
        if self.has_header:
            return f"column {reading.quoted(self.names[index])} (index {index})"
        return f"column {index}"


def _columns_text(names: Sequence[str], has_header: bool) -> str:
    if not has_header:
        return (f"the file has no header and {len(names)} columns "
                f"(indices 0 to {len(names) - 1})")
    shown = ", ".join(f"{i} {reading.quoted(name)}"
                      for i, name in enumerate(names[:_LISTED_COLUMNS]))
    more = len(names) - _LISTED_COLUMNS
    return f"columns: {shown}" + (f", and {more} more" if more > 0 else "")


def _resolve(path: str, column, names: Sequence[str], has_header: bool, what: str) -> int:
    """Returns the index of a column given by name or index.

    Raises:
      spec.CsvError: If there is no such column or the name is ambiguous.
    """
    if isinstance(column, str):
        column = column.strip()
        # Without a header the names are "column_<i>", as the metadata calls them.
        matches = [i for i, name in enumerate(names) if name == column]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise spec.CsvError(f"{path}: the {what} {column!r} is ambiguous: columns "
                                f"{', '.join(map(str, matches))} have that name; give an index")
        if column.isascii() and column.isdecimal():
            column = int(column)
        else:
            raise spec.CsvError(f"{path}: no {what} {column!r}; "
                                f"{_columns_text(names, has_header)}")
    if column >= len(names):
        raise spec.CsvError(f"{path}: no {what} {column}; {_columns_text(names, has_header)}")
    return column


def _first_records(path: str, delimiter: str, count: int = 2) -> list[tuple[int, list[str]]]:
    records = reading.read_records(path, delimiter)
    try:
        return [record for record, _ in zip(records, range(count))]
    finally:
        records.close()


def read_header(path: str, options: spec.CsvOptions) -> _Layout:
    """Reads a CSV file's first two records: whether there is a header, and the names.

    Returns:
      A `_Layout` whose roles (label, features, ...) are not assigned yet.

    Raises:
      spec.CsvError: If the file is empty or holds only a header.
    """
    first = _first_records(path, options.delimiter)
    if not first:
        raise spec.CsvError(f"{path}: the file is empty; it needs one row per example, after an "
                            f"optional header row")
    (line, fields), second = first[0], (first[1][1] if len(first) > 1 else None)
    if options.header == "auto":
        has_header = (any(map(reading.is_name, fields)) if second is None else
                      any(reading.is_name(a) and reading.parse_number(b) is not None
                          for a, b in zip(fields, second)))
    else:
        has_header = options.header
    if has_header and second is None:
        how = "read as a header" if options.header == "auto" else "a header (header=True)"
        raise spec.CsvError(f"{path}: no data rows: its only row (line {line}) is {how}")
    header_names = tuple(name.strip() for name in fields) if has_header else None
    names = tuple((name.strip() or f"column_{i}") if has_header else f"column_{i}"
                  for i, name in enumerate(fields))
    return _Layout(has_header=has_header, names=names, header_names=header_names, label=-1,
                   split=None, features=(), excluded=(), reference_line=line)


def assign_roles(path: str, layout: _Layout, options: spec.CsvOptions) -> _Layout:
    """Resolves the label, split and excluded columns; the rest are features.

    Raises:
      spec.CsvError: If an option names a column that is not there, two roles name one
        column, or no feature column is left.
    """
    names, has_header = layout.names, layout.has_header
    label = (len(names) - 1 if options.label_column is None else
             _resolve(path, options.label_column, names, has_header, "label column"))
    split = (None if options.split_column is None else
             _resolve(path, options.split_column, names, has_header, "split column"))
    excluded = tuple(sorted({_resolve(path, column, names, has_header, "column to exclude")
                             for column in options.exclude_columns}))
    if split == label:
        raise spec.CsvError(f"{path}: split_column and label_column both name "
                            f"{layout.describe(label)}")
    if label in excluded:
        raise spec.CsvError(f"{path}: exclude_columns holds the label, {layout.describe(label)}")
    roles = {label, split, *excluded}
    features = tuple(i for i in range(len(names)) if i not in roles)
    if not features:
        raise spec.CsvError(f"{path}: no feature columns are left besides the label "
                            f"{layout.describe(label)}; {_columns_text(names, has_header)}")
    return dataclasses.replace(layout, label=label, split=split, features=features,
                               excluded=excluded)


def check_same_columns(paths: Sequence[str], layouts: Sequence[_Layout]) -> None:
    """Raises `spec.CsvError` unless separate split files have the same columns."""
    first, reference = paths[0], layouts[0]
    for path, layout in zip(paths[1:], layouts[1:]):
        if len(layout.names) != len(reference.names):
            raise spec.CsvError(f"{path}: {len(layout.names)} columns, but {first} has "
                                f"{len(reference.names)}; separate split files need the same "
                                f"columns")
        if reference.has_header and layout.has_header:
            for i, (mine, theirs) in enumerate(zip(layout.header_names,
                                                   reference.header_names)):
                if mine != theirs:
                    raise spec.CsvError(
                        f"{path}: column {i} is {reading.quoted(mine)}, but in {first} it is "
                        f"{reading.quoted(theirs)}; separate split files need the same columns")


# ---------------------------------------------------------------------------------------
# Sources: a file's rows as (where, label text, feature values, split text, maybe_missing).


class CsvSource:
    """One CSV file with its resolved layout."""

    def __init__(self, path: str, digest: str, layout: _Layout, options: spec.CsvOptions):
        self.path, self.digest, self.layout, self.options = path, digest, layout, options
        self.feature_names = tuple(layout.names[i] for i in layout.features)
        self.label_name = layout.names[layout.label]
        self.label_index = layout.label

    def at(self, line: int, column: int | None = None) -> str:
        """``"PATH line N, column 'x' (index 3)"`` for messages."""
        where = f"{self.path} line {line}"
        return where if column is None else f"{where}, {self.layout.describe(column)}"

    def label_at(self, where: int | None) -> str:
        if where is None:
            return f"{self.path}, {self.layout.describe(self.label_index)}"
        return self.at(where, self.label_index)

    def split_at(self, where: int) -> str:
        return self.at(where, self.layout.split)

    def feature_at(self, where: int, position: int) -> str:
        return self.at(where, self.layout.features[position])

    def feature_column(self, position: int) -> str:
        """``"PATH, column 'x' (index 3)"`` of the feature at ``position``."""
        return f"{self.path}, {self.layout.describe(self.layout.features[position])}"

    def rows(self) -> Iterator[tuple[int, str, list[float], str | None, bool]]:
        """Yields every data row; values holds NaN where a feature is missing.

        The last item is True when the row may hold a missing value (it took the careful
        parse).

        Raises:
          spec.CsvError: For a row of another length, a feature that is not a number, or a
            missing feature value with ``missing="error"``.
        """
        layout, features = self.layout, self.layout.features
        label, split, width = layout.label, layout.split, len(layout.names)
        records = reading.read_records(self.path, self.options.delimiter, self.digest)
        if layout.has_header:
            next(records)
        for line, fields in records:
            if len(fields) != width:
                raise spec.CsvError(f"{self.path} line {line}: {len(fields)} fields, but line "
                                    f"{layout.reference_line} has {width}; every row needs the "
                                    f"same number of fields")
            try:
                values = [float(fields[j]) for j in features]
                # The comparison is False for NaN, inf and values float32 cannot hold
                # (and for rare rows whose magnitudes add up past the limit).
                careful = not sum(map(abs, values)) < reading.FLOAT32_LIMIT
            except ValueError:
                careful = True
            if careful:
                values = self._careful_values(line, fields)
            yield line, fields[label], values, (None if split is None else fields[split]), \
                careful

    def _careful_values(self, line: int, fields: list[str]) -> list[float]:
        values = []
        for j in self.layout.features:
            text = fields[j]
            value = reading.parse_number(text)
            if value is None:
                if not reading.is_missing(text):
                    raise spec.CsvError(self._not_a_number(line, j, text))
                if self.options.missing == "error":
                    raise spec.CsvError(
                        f"{self.at(line, j)}: missing value {reading.quoted(text)}; set "
                        f"config.missing_values='mean' (--config.missing_values=mean) to "
                        f"impute missing features with their train-split mean, or exclude "
                        f"the column (config.exclude_columns)")
                value = math.nan
            values.append(value)
        return values

    def _not_a_number(self, line: int, column: int, text: str) -> str:
        kind = reading.not_a_number_kind(text)
        message = (f"{self.at(line, column)}: {reading.quoted(text)} is not {kind}; feature "
                   f"columns must be numeric (exclude_columns leaves a column out, "
                   f"label_column makes it the label)")
        if line == self.layout.reference_line and self.options.header == "auto":
            message += f"; if line {line} is a header, set header=True"
        return message


