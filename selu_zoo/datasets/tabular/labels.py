"""Labels and splits: the task, the class names, every row's class, and the 60/20/20 split."""

from __future__ import annotations

import math

from absl import logging
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from selu_zoo.datasets import builders
from selu_zoo.datasets.tabular import spec
from selu_zoo.datasets.tabular.csv_file import FLOAT32_LIMIT, is_missing, not_a_number_kind
from selu_zoo.datasets.tabular.csv_file import parse_number

MAX_CLASSES = 10_000
_MANY_CLASSES = 100  # More classes chosen by task="auto" get a warning.
_MISSING = "missing label {text}; every row needs a label"


class Labels:
    """Every row's label: a class code while classification is possible, a value while all
    labels are numbers; `finish` decides the task."""

    def __init__(self, task: str):
        self.task, self.numeric, self.integer = task, True, True
        self.numbers_only = task == spec.REGRESSION  # Also after more than MAX_CLASSES.
        self.code_of, self.code_of_name, self.names, self.values = {}, {}, [], []

    def add(self, texts: pa.Array, source, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns the int32 codes (-1 once none are kept) and float64 values of a batch.

        Raises:
          spec.CsvError: For a missing or infinite label, a non-number where the task needs
            numbers, or more than `MAX_CLASSES` classes of names.
        """
        if not self.numbers_only:
            encoded = texts.dictionary_encode()
            indices = encoded.indices.to_numpy(zero_copy_only=False)
            dictionary = encoded.dictionary.to_pylist()
            for k, text in enumerate(dictionary):
                if text not in self.code_of and not self.numbers_only:
                    self._new(text, source, lambda k=k: first + int(np.argmax(indices == k)))
            if not self.numbers_only:
                codes = np.array([self.code_of[text] for text in dictionary], np.int32)[indices]
                return codes, np.array(self.values, np.float64)[codes]
        values = _numbers(texts, source, first, self.task)
        self.integer = self.integer and bool((values == np.floor(values)).all())
        return np.full(len(values), -1, np.int32), values

    def _new(self, text: str, source, row) -> None:  # row() is its row, for an error.
        stripped = text.strip()
        value = parse_number(stripped)
        if value is None and (is_missing(stripped) or not_a_number_kind(stripped) != "a number"):
            source.fail(row(), "label", _MISSING if is_missing(stripped) else
                        f"label {{text}} is not {not_a_number_kind(stripped)}")
        if value is None:
            self.numeric, name, value = False, stripped, math.nan
        elif value.is_integer():  # "1.0" and "+1" are "1"; exact beyond 2**53 too.
            name = str(int(stripped) if stripped.lstrip("+-").isdecimal() else int(value))
        else:
            self.integer, name = False, repr(value)
        code = self.code_of[text] = self.code_of_name.setdefault(name, len(self.names))
        if code == len(self.names):
            self.names.append(name)
            self.values.append(value)
        if len(self.code_of) > MAX_CLASSES:
            if self.task == spec.CLASSIFICATION or not self.numeric:
                raise spec.CsvError(f"{source.where('label')}: more than {MAX_CLASSES} "
                                    f"distinct labels; classification allows at most "
                                    f"{MAX_CLASSES} classes (set task='regression' for a "
                                    f"numeric target)")
            self.numbers_only = True  # More than MAX_CLASSES numbers: a regression target.

    def finish(self, source, num_rows: int):
        """Returns ``(task, class_names, final_code_of_code)``, the last two None for regression.

        Raises:
          spec.CsvError: For a single class, a class name with a line break, or more than
            `MAX_CLASSES` integer labels.
        """
        if self.task == spec.REGRESSION or (
                self.task == "auto" and self.numeric and not self.integer):
            return spec.REGRESSION, None, None
        where, names = source.where("label"), self.names
        if self.numbers_only:
            raise spec.CsvError(f"{where}: more than {MAX_CLASSES} distinct integer labels; set "
                                f"task='regression' (classification allows at most "
                                f"{MAX_CLASSES} classes)")
        if len(names) == 1:
            raise spec.CsvError(f"{where}: a single class {names[0]!r} in {num_rows} rows; "
                                f"classification needs at least 2 classes" + (
                                    "" if math.isnan(self.values[0]) else
                                    " (set task='regression' for a numeric target)"))
        broken = [name for name in names if "\n" in name or "\r" in name]
        if broken:
            raise spec.CsvError(f"{where}: class {broken[0][:40]!r} holds a line break; class "
                                f"names must be one line")
        order = sorted(range(len(names)), key=(self.values if self.numeric else names).__getitem__)
        final = np.empty(len(names), np.int64)
        final[order] = np.arange(len(names))
        if self.task == "auto" and self.numeric and len(names) > _MANY_CLASSES:
            logging.warning("%s holds %d distinct integers, read as classes; set "
                            "task='regression' if it is a numeric target", where, len(names))
        return spec.CLASSIFICATION, tuple(names[i] for i in order), final


def _numbers(texts: pa.Array, source, first: int, task: str) -> np.ndarray:
    """A batch of labels as float64, which must all be finite float32 numbers."""
    try:
        values = pc.cast(pc.utf8_trim_whitespace(texts), pa.float64()).to_numpy()
        if (np.abs(values) < FLOAT32_LIMIT).all():
            return values
    except pa.ArrowInvalid:
        pass  # A spelling pyarrow does not read, or not a number: one by one.
    values = np.array([parse_number(text) for text in texts.to_pylist()], np.float64)
    for i in np.flatnonzero(np.isnan(values))[:1]:
        text = texts[int(i)].as_py()
        why = ("task='regression' needs numeric labels" if task == spec.REGRESSION else
               f"earlier labels are more than {MAX_CLASSES} distinct numbers (a regression "
               f"target)")
        source.fail(first + int(i), "label", _MISSING if is_missing(text) else
                    f"label {{text}} is not {not_a_number_kind(text)}; {why}")
    return values


def split_codes(splits: pa.Array, source, first: int) -> np.ndarray:
    """The split code (index in `spec.SPLITS`) of each split-column value of a batch."""
    codes = pc.index_in(pc.utf8_lower(pc.utf8_trim_whitespace(splits)),
                        value_set=pa.array(spec.SPLITS)).fill_null(-1).to_numpy()
    if (codes < 0).any():
        source.fail(first + int(np.argmax(codes < 0)), "split",
                    "split {text} is not one of train, validation, test")
    return codes.astype(np.int8)


def holdout_split(codes: np.ndarray, class_names, seed: int, where: str) -> np.ndarray:
    """Split codes giving each class's ``round(0.2 * n)`` rows (seeded) to test and as many to
    validation; ``class_names`` None for regression (one class, all codes 0).

    Raises:
      spec.CsvError: If a class has fewer than 3 rows.
    """
    counts = np.bincount(codes, minlength=len(class_names or [0]))
    rarest = int(np.argmin(counts))
    if counts[rarest] < 3:
        raise spec.CsvError(f"{where}: {len(codes)} data rows are too few for a " + (
            "60/20/20 split: it needs at least 3, one for each split" if class_names is None
            else f"stratified 60/20/20 split: every class needs at least 3 rows, one for each "
            f"split, and class {class_names[rarest]!r} has {counts[rarest]}; give more rows, "
            f"or the splits as three files or a split_column"))
    rng, split_of = np.random.default_rng(seed), np.zeros(len(codes), np.int8)
    by_class, ends = np.argsort(codes, kind="stable"), np.cumsum(counts)
    for low, high in zip(ends - counts, ends):
        holdout = round(builders.HOLDOUT_FRACTION * (high - low))
        chosen = rng.choice(by_class[low:high], 2 * holdout, replace=False)
        split_of[chosen[:holdout]], split_of[chosen[holdout:]] = 2, 1  # Test, validation.
    return split_of
