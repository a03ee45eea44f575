"""Shared helpers of the experiments: seeds, data, result files."""

import json
import math
import os

import keras
import numpy as np

from selu_zoo import datasets

# Keras' Normalization floors the variance with this epsilon; constant features become 0.
_VARIANCE_FLOOR = 1e-7


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (and so every unseeded Keras initializer).

    Args:
      seed: a non-negative int.
    """
    keras.utils.set_random_seed(int(seed))


def load_standardized(name, data_dir=None, feature_shape=None, max_train_examples=None,
                      download=False):
    """Reads all splits of a small dataset and standardizes them with train-split statistics.

    Standardization is ``(x - mean) / sqrt(max(variance, 1e-7))`` per feature, the
    statistics taken over the train split only (`selu_zoo.datasets.DatasetInfo`), so
    constant features (digits' border pixels) become 0. The experiments fit whole NumPy
    arrays, so this is for the small embedded datasets: it holds every split in memory.

    Args:
      name: dataset name for `selu_zoo.datasets.open_dataset`.
      data_dir: TFDS data directory; None uses TFDS's default.
      feature_shape: feature shape passed to the loader; None keeps the stored one.
        Features are flattened to vectors afterwards.
      max_train_examples: keep only the first this many train examples (None: all).
      download: whether a catalog dataset that is not prepared may be downloaded.

    Returns:
      ``(splits, info)``: split name -> ``(features float32 (n, d), labels int32 (n,))``
      for ``train``, ``validation`` and ``test``, and the `DatasetInfo`.
    """
    data = datasets.open_dataset(name, data_dir=data_dir, download=download,
                                 feature_shape=feature_shape)
    info = data.info
    mean = np.asarray(info.mean, np.float64).reshape(-1)
    std = np.sqrt(np.maximum(np.asarray(info.variance, np.float64).reshape(-1),
                             _VARIANCE_FLOOR))
    splits = {}
    for split in datasets.SPLITS:
        features, labels = data.take(split, info.num_examples[split])
        features = features.reshape(len(features), -1)
        if split == "train" and max_train_examples is not None:
            features, labels = features[:max_train_examples], labels[:max_train_examples]
        splits[split] = (((features - mean) / std).astype(np.float32),
                         labels.astype(np.int32))
    return splits, info


def finite_or_none(value, digits=6):
    """Rounds a float to ``digits`` significant digits; NaN and infinities become None.

    Args:
      value: a number.
      digits: significant digits kept.

    Returns:
      A float, or None where JSON has no number.
    """
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def jsonable(obj):
    """Converts nested results (dicts, lists, tuples, NumPy values) for `json.dump`.

    Floats keep 6 significant digits (NaN and infinities become null).

    Args:
      obj: the object.

    Returns:
      An object of dicts, lists, strings, ints, floats, bools and None.
    """
    if isinstance(obj, dict):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return finite_or_none(obj)
    return obj


def write_json(path, obj):
    """Writes ``jsonable(obj)`` as indented JSON (through a temporary file and rename).

    Args:
      path: destination file.
      obj: the results.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(jsonable(obj), f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def write_text(path, text):
    """Writes text (through a temporary file and rename).

    Args:
      path: destination file.
      text: the contents.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def markdown_table(headers, rows):
    """Formats a GitHub Markdown table.

    Args:
      headers: column titles.
      rows: sequences of cells (already formatted strings or numbers).

    Returns:
      The table as a string ending in a newline.
    """
    lines = ["| " + " | ".join(str(h) for h in headers) + " |",
             "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fmt(value, spec=".3g"):
    """Formats a number for a table; None, NaN and infinities as ``nan``/``inf``.

    Args:
      value: a number or None.
      spec: format spec for finite numbers.

    Returns:
      The string.
    """
    if value is None:
        return "n/a"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec)
