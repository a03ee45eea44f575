"""The validation pass: labels and the task, split assignment, imputation means."""

from __future__ import annotations

import array
import dataclasses
import itertools
import random
from typing import Iterable, Sequence

from absl import logging
import numpy as np

from selu_zoo.datasets import builders
from selu_zoo.datasets.tabular import reading
from selu_zoo.datasets.tabular import spec

# Most distinct labels a classification task may have.
MAX_CLASSES = 10_000
# Above this many classes chosen by task="auto", a warning suggests task="regression".
_MANY_CLASSES = 100
# A one-file dataset needs this many rows of every class (one per split), or in all for
# regression.
_MIN_ROWS_PER_CLASS = 3
_TRAIN_CODE = spec.SPLIT_CODES[spec.TRAIN]


# ---------------------------------------------------------------------------------------
# Labels and the task.


class _Labels:
    """Collects every row's label in one pass and decides the task.

    While classification is possible it keeps one int32 code per row and the distinct
    label texts (at most `MAX_CLASSES`); a regression target keeps nothing per row.
    """

    def __init__(self, task: str):
        self.requested = task
        self.codes = array.array("i")
        self._code_of_text: dict[str, int] = {}
        self._code_of_name: dict[str, int] = {}
        self._names: list[str] = []
        self._values: list[float | None] = []
        self.numeric = True  # Every label so far is a number.
        self.integer = True  # Every number so far is integer-valued.
        self.overflow = False  # More distinct numbers than MAX_CLASSES (task="auto").
        self._numbers_only = task == spec.REGRESSION

    def add(self, text: str, source, where: int) -> None:
        """Records one row's label.

        Raises:
          spec.CsvError: For a missing label, a non-number in a regression target, or too many
            distinct labels for classification.
        """
        code = self._code_of_text.get(text)
        if code is not None:
            self.codes.append(code)
        elif self._numbers_only:
            self._add_number(text, source, where)
        else:
            self._add_new_text(text, source, where)

    def _missing(self, text: str, source, where: int) -> spec.CsvError:
        return spec.CsvError(f"{source.label_at(where)}: missing label "
                             f"{reading.quoted(text)}; every row needs a label")

    def _add_number(self, text: str, source, where: int) -> None:
        value = reading.parse_number(text)
        if value is None:
            if reading.is_missing(text):
                raise self._missing(text, source, where)
            why = ("task='regression' needs numeric labels" if self.requested == spec.REGRESSION
                   else f"earlier labels are more than {MAX_CLASSES} distinct numbers (a "
                   f"regression target)")
            raise spec.CsvError(f"{source.label_at(where)}: label {reading.quoted(text)} is not "
                                f"{reading.not_a_number_kind(text)}; {why}")
        if not value.is_integer():
            self.integer = False

    def _add_new_text(self, text: str, source, where: int) -> None:
        stripped = text.strip()
        if reading.is_missing(stripped):
            raise self._missing(text, source, where)
        number = reading.canonical_number(stripped)
        if number is None and reading.not_a_number_kind(stripped) != "a number":
            raise spec.CsvError(f"{source.label_at(where)}: label {reading.quoted(text)} is not "
                                f"{reading.not_a_number_kind(stripped)}")
        if number is None:
            self.numeric = False
            name, value = stripped, None
        else:
            name, value = number
            self.integer = self.integer and value.is_integer()
        code = self._code_of_name.get(name)
        if code is None:
            code = self._code_of_name[name] = len(self._names)
            self._names.append(name)
            self._values.append(value)
        self._code_of_text[text] = code
        self.codes.append(code)
        if len(self._code_of_text) > MAX_CLASSES:
            self._overflowed(source)

    def _overflowed(self, source) -> None:
        if self.requested == spec.CLASSIFICATION or not self.numeric:
            raise spec.CsvError(f"{source.label_at(None)}: more than {MAX_CLASSES} distinct "
                                f"labels; classification allows at most {MAX_CLASSES} classes "
                                f"(set task='regression' for a numeric target)")
        self.overflow, self._numbers_only = True, True
        self._code_of_text, self._code_of_name, self.codes = {}, {}, None

    def finish(self, source) -> tuple[str, tuple[str, ...] | None, dict[str, int] | None]:
        """Decides the task and the class order.

        Returns:
          ``(task, class_names, code_of_text)``; after it, ``codes`` holds the final class
          of every row (an int32 array), or is None for regression.

        Raises:
          spec.CsvError: For a single class, or more than `MAX_CLASSES` integer labels.
        """
        if self.requested == spec.REGRESSION or (
                self.requested == "auto" and self.numeric and not self.integer):
            self.codes = None
            return spec.REGRESSION, None, None
        if self.overflow:
            raise spec.CsvError(f"{source.label_at(None)}: more than {MAX_CLASSES} distinct "
                                f"integer labels; set task='regression' (classification allows "
                                f"at most {MAX_CLASSES} classes)")
        names = self._names
        if len(names) == 1:
            raise spec.CsvError(f"{source.label_at(None)}: a single class {names[0]!r} in "
                                f"{len(self.codes)} rows; classification needs at least 2 classes"
                           + ("" if self._values[0] is None else
                              " (set task='regression' for a numeric target)"))
        for name in names:
            if "\n" in name or "\r" in name:
                raise spec.CsvError(f"{source.label_at(None)}: class {reading.quoted(name)} "
                                    f"holds a line break; class names must be one line")
        order = (sorted(range(len(names)), key=self._values.__getitem__) if self.numeric
                 else sorted(range(len(names)), key=names.__getitem__))
        final = np.empty(len(names), np.int32)
        final[order] = np.arange(len(names), dtype=np.int32)
        self.codes = final[np.frombuffer(self.codes, dtype=np.intc)]
        if self.requested == "auto" and self.numeric and len(names) > _MANY_CLASSES:
            logging.warning("%s holds %d distinct integers, read as %d classes; set "
                            "task='regression' if it is a numeric target",
                            source.label_at(None), len(names), len(names))
        code_of_text = {text: int(final[code]) for text, code in self._code_of_text.items()}
        return spec.CLASSIFICATION, tuple(names[i] for i in order), code_of_text


# ---------------------------------------------------------------------------------------
# Validation and the split plan.


@dataclasses.dataclass
class Plan:
    """What the validation pass found, and where every row goes."""

    task: str
    class_names: tuple[str, ...] | None
    code_of_text: dict[str, int] | None
    split_of: np.ndarray  # int8 spec.SPLIT_CODES of every row, in file order.
    split_method: str
    means: dict[int, float]  # Feature position -> train-split mean, for imputed features.


def _split_code(text: str, source, where: int) -> int:
    code = spec.SPLIT_CODES.get(text.strip().lower())
    if code is None:
        raise spec.CsvError(f"{source.split_at(where)}: split {reading.quoted(text)} is not "
                            f"one of train, validation, test")
    return code


def scan(sources: Sequence, options: spec.CsvOptions
         ) -> tuple[_Labels, array.array | None, list[int], int]:
    """Reads every row once and checks it.

    Returns:
      ``(labels, given_splits, missing_counts, num_rows)``: the collected labels, the split
      code of every row when the files or a split column give it (else None), the number
      of missing values of each feature, and the number of rows of all files.

    Raises:
      spec.CsvError: For the first bad row.
    """
    labels = _Labels(options.task)
    given = array.array("b") if len(sources) == 3 or options.split_column is not None \
        else None
    missing = [0] * len(sources[0].feature_names)
    total = 0
    for file_index, source in enumerate(sources):
        num_rows = 0
        for where, label, values, split_text, careful in source.rows():
            labels.add(label, source, where)
            if careful:
                for position, value in enumerate(values):
                    if value != value:  # NaN: a missing value to impute.
                        missing[position] += 1
            if split_text is not None:
                given.append(_split_code(split_text, source, where))
            elif given is not None:
                given.append(file_index)
            num_rows += 1
        if not num_rows:
            raise spec.CsvError(f"{source.path}: no data rows")
        total += num_rows
    return labels, given, missing, total


def _holdout(count: int) -> int:
    """Rows of a class (or of a regression file) that go to each of validation and test."""
    return int(round(builders.HOLDOUT_FRACTION * count))


def selection_split(codes: Iterable[int], counts: Sequence[int], seed: int) -> np.ndarray:
    """Assigns every row a split, stratified by class and seeded.

    Class c gives ``_holdout(n_c)`` of its rows to test and as many to validation, the
    rest to train; every such choice is equally likely.

    Sequential selection sampling (Knuth's Algorithm S, with two subsets): a row of class
    c, with R rows of c still to come of which T must go to test and V to validation,
    goes to test with probability T/R and to validation with probability V/R. It needs
    O(classes) memory besides the int8 result (scikit-learn's splitter holds about 80
    bytes per row), and Python's ``random.random`` sequence is stable for a seed.

    Args:
      codes: The class of every row, in file order (all 0 for one class).
      counts: Rows of each class.
      seed: Seeds ``random.Random``.

    Returns:
      int8 split codes (indices into `SPLITS`), one per row.
    """
    draw = random.Random(seed).random
    left = list(counts)
    test = [_holdout(count) for count in counts]
    validation = list(test)
    split_of = bytearray(sum(counts))  # All _TRAIN_CODE (0) to start with.
    validation_code = spec.SPLIT_CODES[spec.VALIDATION]
    test_code = spec.SPLIT_CODES[spec.TEST]
    for row, code in enumerate(codes):
        u = draw() * left[code]
        left[code] -= 1
        if u < test[code]:
            test[code] -= 1
            split_of[row] = test_code
        elif u < test[code] + validation[code]:
            validation[code] -= 1
            split_of[row] = validation_code
    return np.frombuffer(split_of, np.int8)


def _stratified(codes: np.ndarray, class_names, seed: int, where: str) -> np.ndarray:
    counts = np.bincount(codes, minlength=len(class_names)).tolist()
    rarest = int(np.argmin(counts))
    if counts[rarest] < _MIN_ROWS_PER_CLASS:
        raise spec.CsvError(f"{where}: {len(codes)} data rows are too few for a stratified "
                            f"60/20/20 split: every class needs at least {_MIN_ROWS_PER_CLASS} "
                            f"rows, one for each split, and class {class_names[rarest]!r} has "
                            f"{counts[rarest]}; give more rows, or the splits as three files or "
                            f"a split_column")
    return selection_split(memoryview(codes), counts, seed)


def _random(num_rows: int, seed: int, where: str) -> np.ndarray:
    if num_rows < _MIN_ROWS_PER_CLASS:
        raise spec.CsvError(f"{where}: {num_rows} data rows are too few for a 60/20/20 "
                            f"split: it needs at least {_MIN_ROWS_PER_CLASS}, one for each split")
    return selection_split(itertools.repeat(0, num_rows), [num_rows], seed)


def _check_given(split_of: np.ndarray, where: str) -> None:
    counts = np.bincount(split_of, minlength=len(spec.SPLITS))
    for split, count in zip(spec.SPLITS, counts):
        if not count:
            raise spec.CsvError(f"{where}: no rows for the {split} split; each split needs at "
                                f"least one row")


def _train_means(sources: Sequence, split_of: np.ndarray, missing: list[int]
                 ) -> dict[int, float]:
    """Streams the rows once more for the train-split mean of each feature with gaps.

    Raises:
      spec.CsvError: If such a feature has no value in the train split.
    """
    positions = [position for position, count in enumerate(missing) if count]
    sums, counts = [0.0] * len(positions), [0] * len(positions)
    splits, row = split_of.tobytes(), 0
    for source in sources:
        for _, _, values, _, _ in source.rows():
            if splits[row] == _TRAIN_CODE:
                for k, position in enumerate(positions):
                    value = values[position]
                    if value == value:
                        sums[k] += value
                        counts[k] += 1
            row += 1
    means = {}
    for k, position in enumerate(positions):
        if not counts[k]:
            raise spec.CsvError(f"{sources[0].feature_column(position)}: no value in the train "
                                f"split to impute its {missing[position]} missing values from; "
                                f"exclude the column")
        means[position] = sums[k] / counts[k]
    return means


def make_plan(sources: Sequence, options: spec.CsvOptions) -> Plan:
    """Validates every file in one streaming pass (two with imputation) and plans splits.

    Raises:
      spec.CsvError: For any bad file; nothing is written before this returns.
    """
    labels, given, missing, num_rows = scan(sources, options)
    task, class_names, code_of_text = labels.finish(sources[0])
    where = sources[0].label_at(None)
    if given is not None:
        split_of = np.frombuffer(given, np.int8)
        method = "files" if len(sources) == 3 else "column"
        if method == "column":
            layout = sources[0].layout
            _check_given(split_of, f"{sources[0].path}, {layout.describe(layout.split)}")
    elif task == spec.CLASSIFICATION:
        split_of = _stratified(labels.codes, class_names, options.split_seed, where)
        method = "stratified"
    else:
        split_of, method = _random(num_rows, options.split_seed, where), "random"
    means = _train_means(sources, split_of, missing) if any(missing) else {}
    return Plan(task, class_names, code_of_text, split_of, method, means)


