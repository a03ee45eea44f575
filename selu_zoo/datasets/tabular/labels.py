"""Labels and splits: the task, the class names, every row's label, and the 60/20/20 split."""

from __future__ import annotations

from absl import logging
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from selu_zoo.datasets import builders
from selu_zoo.datasets.tabular import spec
from selu_zoo.datasets.tabular.csv_file import FLOAT32_LIMIT, MISSING_TOKENS, not_a_number_kind

MAX_CLASSES = 10_000
_MANY_CLASSES = 100  # More classes chosen by task="auto" get a warning.


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return np.nan


def _class_name(text: str, value: float) -> str:
    if np.isnan(value):
        return text
    if value.is_integer():  # "1.0" and "+1" are "1"; exact beyond 2**53 too.
        return str(int(text) if text.lstrip("+-").isdecimal() else int(value))
    return repr(float(value))


def finish(chunks, task: str, fail, where: str):
    """Decides the task and gives every row its label.

    Args:
      chunks: The label texts of each batch of rows, dictionary-encoded pyarrow arrays.
      task: `spec.CsvOptions.task`.
      fail: ``fail(row, message)`` raises `spec.CsvError` naming the row; ``{text}`` in the
        message is its label.
      where: The file and the label column, for messages about the whole column.

    Returns:
      ``(task, class_names, labels)``: class names None and float32 labels for regression,
      else int64 class indices.

    Raises:
      spec.CsvError: For a missing or infinite label, a non-number where the task needs
        numbers, a single class, a class name with a line break, or more than
        `MAX_CLASSES` classes.
    """
    column = pa.chunked_array(chunks).unify_dictionaries()
    indices = np.concatenate([chunk.indices.to_numpy() for chunk in column.chunks])
    texts = pc.utf8_trim_whitespace(column.chunk(0).dictionary)
    try:  # One value per distinct label text.
        values = pc.cast(texts, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        values = np.array([_float(text) for text in texts.to_pylist()], np.float64)
    missing = pc.is_in(pc.utf8_lower(texts), value_set=pa.array(sorted(MISSING_TOKENS)))
    missing = missing.to_numpy(zero_copy_only=False)
    numeric = ~np.isnan(values) & ~missing
    infinite = numeric & ~(np.abs(values) < FLOAT32_LIMIT)
    bad = missing | infinite | (~numeric if task == spec.REGRESSION else False)
    for row in np.flatnonzero(bad[indices])[:1]:
        text = texts[int(indices[row])].as_py()
        fail(int(row), "missing label {text}; every row needs a label" if missing[indices[row]]
             else f"label {{text}} is not {not_a_number_kind(text)}" + (
                 "" if infinite[indices[row]] else "; task='regression' needs numeric labels"))
    numeric = bool(numeric.all())
    if task == spec.REGRESSION or (task == "auto" and numeric and (values % 1).any()):
        return spec.REGRESSION, None, values[indices].astype(np.float32)
    if len(texts) > MAX_CLASSES:
        raise spec.CsvError(f"{where}: more than {MAX_CLASSES} distinct " + (
            "integer labels; set task='regression' (classification allows at most "
            f"{MAX_CLASSES} classes)" if numeric else f"labels; classification allows at "
            f"most {MAX_CLASSES} classes (set task='regression' for a numeric target)"))
    names = [_class_name(text, value) for text, value in zip(texts.to_pylist(), values)]
    value_of = dict(zip(names, values))
    class_names = tuple(sorted(value_of, key=value_of.get if numeric else None))
    if len(class_names) == 1:
        raise spec.CsvError(f"{where}: a single class {class_names[0]!r} in {len(indices)} "
                            f"rows; classification needs at least 2 classes" + (
                                " (set task='regression' for a numeric target)" if numeric
                                else ""))
    broken = [name for name in class_names if "\n" in name or "\r" in name]
    if broken:
        raise spec.CsvError(f"{where}: class {broken[0][:40]!r} holds a line break; class "
                            f"names must be one line")
    if task == "auto" and numeric and len(class_names) > _MANY_CLASSES:
        logging.warning("%s holds %d distinct integers, read as classes; set "
                        "task='regression' if it is a numeric target", where, len(class_names))
    code_of = {name: code for code, name in enumerate(class_names)}
    codes = np.array([code_of[name] for name in names], np.int64)
    return spec.CLASSIFICATION, class_names, codes[indices]


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
