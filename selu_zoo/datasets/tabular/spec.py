"""What a user gives: ``csv:``/``npz:`` dataset names, `CsvOptions`, and `CsvError`."""

from __future__ import annotations

import dataclasses

from selu_zoo.datasets import builders

TRAIN, VALIDATION, TEST = builders.TRAIN, builders.VALIDATION, builders.TEST
SPLITS = builders.SPLITS
# Split name -> the int8 code rows carry while being prepared (train is 0).
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}
CLASSIFICATION = "classification"
REGRESSION = "regression"

CSV_PREFIX = "csv:"
NPZ_PREFIX = "npz:"


# The field separators `CsvOptions(delimiter="auto")` chooses from.
DELIMITERS = (",", ";", "\t", "|")


class CsvError(ValueError):
    """A tabular file cannot be used; the message is one line naming file, column and row."""


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_column_option(option: str, value) -> None:
    if value is None or (_is_index(value) and value >= 0) or (
            isinstance(value, str) and value.strip()):
        return
    raise ValueError(f"{option}={value!r} is not valid: give a column name, a 0-based "
                     f"column index or None")


@dataclasses.dataclass(frozen=True)
class CsvOptions:
    """How to read a user's tabular files.

    Attributes:
      label_column: Header name or 0-based index of the label column; None for the last
        column. A string of digits is an index when the file has no header, or when the
        header has no column of that name.
      header: ``"auto"`` (the first row is a header when it holds a name where the second
        row holds a number), True or False. The strings ``"true"``/``"false"`` (any case)
        are read as booleans, as a command line gives them.
      exclude_columns: Names or indices of columns that are not features. A single name or
        index is one column.
      task: ``"auto"``, ``"classification"`` or ``"regression"``.
      split_column: None, or the name or index of a column whose values are ``train``,
        ``validation`` or ``test`` (any case); it is not a feature.
      missing: ``"error"`` (a missing feature value is a `CsvError`) or ``"mean"`` (it is
        replaced by the feature's train-split mean). A missing label is always an error.
      split_seed: Seed of the 60/20/20 split of a single file, in [0, 2**32).
      delimiter: The one-character field separator, or ``"auto"``: the one of
        `DELIMITERS` that the first line has most of (outside quotes), else ``,``.

    Raises:
      ValueError: From the constructor, naming the option, if a value is not allowed.
    """

    label_column: str | int | None = None
    header: str | bool = "auto"
    exclude_columns: tuple = ()
    task: str = "auto"
    split_column: str | int | None = None
    missing: str = "error"
    split_seed: int = builders.SPLIT_SEED
    delimiter: str = "auto"

    def __post_init__(self):
        _check_column_option("label_column", self.label_column)
        _check_column_option("split_column", self.split_column)
        header = self.header
        if isinstance(header, str) and header.strip().lower() in ("true", "false"):
            object.__setattr__(self, "header", header.strip().lower() == "true")
        elif header != "auto" and not isinstance(header, bool):
            raise ValueError(f"header={header!r} is not valid: use 'auto', True or False")
        excluded = self.exclude_columns
        if isinstance(excluded, (str, int)):
            excluded = (excluded,)
        try:
            excluded = tuple(excluded)
        except TypeError:
            raise ValueError(f"exclude_columns={self.exclude_columns!r} is not valid: give "
                             f"a tuple of column names or 0-based indices") from None
        for column in excluded:
            if column is None:
                raise ValueError("exclude_columns holds None: give column names or "
                                 "0-based indices")
            _check_column_option("exclude_columns", column)
        object.__setattr__(self, "exclude_columns", excluded)
        if self.task not in ("auto", CLASSIFICATION, REGRESSION):
            raise ValueError(f"task={self.task!r} is not valid: use 'auto', "
                             f"'classification' or 'regression'")
        if self.missing not in ("error", "mean"):
            raise ValueError(f"missing={self.missing!r} is not valid: use 'error' or 'mean'")
        if not _is_index(self.split_seed) or not 0 <= self.split_seed < 2**32:
            raise ValueError(f"split_seed={self.split_seed!r} is not valid: use an integer "
                             f"in [0, 2**32)")
        if self.delimiter != "auto" and (not isinstance(self.delimiter, str)
                                         or len(self.delimiter) != 1
                                         or self.delimiter in "\"\r\n"):
            raise ValueError(f"delimiter={self.delimiter!r} is not valid: use one character "
                             f"other than a quote or a line break")


# ---------------------------------------------------------------------------------------
# Dataset names.


def is_csv(name: str) -> bool:
    """Whether a dataset name is ``csv:PATH`` or ``csv:TRAIN,VALIDATION,TEST``."""
    return isinstance(name, str) and name.startswith(CSV_PREFIX)


def is_npz(name: str) -> bool:
    """Whether a dataset name is ``npz:PATH`` or ``npz:TRAIN,VALIDATION,TEST``."""
    return isinstance(name, str) and name.startswith(NPZ_PREFIX)


def parse_spec(name: str) -> tuple[str, ...]:
    """Returns the paths of a ``csv:`` or ``npz:`` dataset name.

    Args:
      name: ``csv:PATH`` (split 60/20/20 or by a split column) or
        ``csv:TRAIN,VALIDATION,TEST`` (one file per split); the same with ``npz:``.
        Paths are separated by commas, so a path cannot hold one.

    Returns:
      One path or three, in split order.

    Raises:
      ValueError: If the prefix is neither, a path is empty, or there are not 1 or 3.
    """
    if not (is_csv(name) or is_npz(name)):
        raise ValueError(f"{name!r} is not a file dataset: use csv:PATH or npz:PATH")
    prefix, _, rest = name.partition(":")
    paths = tuple(path.strip() for path in rest.split(","))
    if any(not path for path in paths):
        raise ValueError(f"{name!r} has an empty path: use {prefix}:PATH or "
                         f"{prefix}:TRAIN,VALIDATION,TEST")
    if len(paths) not in (1, 3):
        raise ValueError(f"{name!r} names {len(paths)} files: use one "
                         f"({prefix}:PATH) or three ({prefix}:TRAIN,VALIDATION,TEST)")
    return paths


