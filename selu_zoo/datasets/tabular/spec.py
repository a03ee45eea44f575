"""What a user gives: ``csv:``/``npz:`` dataset names, `CsvOptions`, and `CsvError`."""

from __future__ import annotations

import dataclasses

from selu_zoo.datasets import builders

SPLITS = builders.SPLITS
CLASSIFICATION, REGRESSION = "classification", "regression"
DELIMITERS = (",", ";", "\t", "|")  # What `CsvOptions(delimiter="auto")` chooses from.


class CsvError(ValueError):
    """A tabular file cannot be used; the message is one line naming file, column and row."""


def _is_column(value) -> bool:
    return (type(value) is int and value >= 0) or (isinstance(value, str) and bool(value.strip()))


@dataclasses.dataclass(frozen=True)
class CsvOptions:
    """How to read a user's tabular files; README.md ("Your own data") gives the meanings.

    Attributes:
      label_column: Header name or 0-based index; None for the last column.
      header: ``"auto"``, True or False (``"true"``/``"false"`` in any case too).
      exclude_columns: Names or indices of columns that are not features (one or a tuple).
      task: ``"auto"``, ``"classification"`` or ``"regression"``.
      split_column: None, or the column of ``train``/``validation``/``test`` (any case).
      missing: ``"error"``, or ``"mean"``: a missing feature is its train-split mean.
      split_seed: Seed of the 60/20/20 split of a single file, in [0, 2**32).
      delimiter: One character, or ``"auto"``: the one of `DELIMITERS` the first line has
        most of (outside quotes), else ``,``.

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
        header, excluded, delimiter = self.header, self.exclude_columns, self.delimiter
        if isinstance(header, str) and header.strip().lower() in ("true", "false"):
            object.__setattr__(self, "header", header.strip().lower() == "true")
        try:
            excluded = (excluded,) if isinstance(excluded, (str, int)) else tuple(excluded)
        except TypeError:
            excluded = (None,)
        column = "give a column name, a 0-based column index or None"
        checks = {
            "label_column": (self.label_column is None or _is_column(self.label_column), column),
            "split_column": (self.split_column is None or _is_column(self.split_column), column),
            "header": (isinstance(self.header, bool) or header == "auto", "use 'auto', True or "
                       "False"),
            "exclude_columns": (all(map(_is_column, excluded)), "give a tuple of column names "
                                "or 0-based indices"),
            "task": (self.task in ("auto", CLASSIFICATION, REGRESSION), "use 'auto', "
                     "'classification', 'regression'"),
            "missing": (self.missing in ("error", "mean"), "use 'error', 'mean'"),
            "split_seed": (type(self.split_seed) is int and 0 <= self.split_seed < 2**32,
                           "use an integer in [0, 2**32)"),
            "delimiter": (delimiter == "auto" or (isinstance(delimiter, str) and len(
                delimiter) == 1 and delimiter not in "\"\r\n"), "use one character other than "
                          "a quote or a line break"),
        }
        for option, (ok, use) in checks.items():
            if not ok:
                raise ValueError(f"{option}={getattr(self, option)!r} is not valid: {use}")
        object.__setattr__(self, "exclude_columns", excluded)


def is_csv(name: str) -> bool:
    """Whether a dataset name is ``csv:PATH`` or ``csv:TRAIN,VALIDATION,TEST``."""
    return isinstance(name, str) and name.startswith("csv:")


def is_npz(name: str) -> bool:
    """Whether a dataset name is ``npz:PATH`` or ``npz:TRAIN,VALIDATION,TEST``."""
    return isinstance(name, str) and name.startswith("npz:")


def parse_spec(name: str) -> tuple[str, ...]:
    """Returns the paths (one, or three in split order) of a ``csv:``/``npz:`` dataset name.

    Raises:
      ValueError: If the prefix is neither, a path is empty, or there are not 1 or 3.
    """
    if not (is_csv(name) or is_npz(name)):
        raise ValueError(f"{name!r} is not a file dataset: use csv:PATH or npz:PATH")
    prefix, _, rest = name.partition(":")
    paths = tuple(path.strip() for path in rest.split(","))
    if not all(paths) or len(paths) not in (1, 3):
        raise ValueError(f"{name!r} names {len(paths)} files" + (
            "" if all(paths) else ", one of them empty") + f": use one ({prefix}:PATH) or "
            f"three ({prefix}:TRAIN,VALIDATION,TEST)")
    return paths
