"""Train-split statistics, computed in one streaming pass (Chan et al.'s parallel update in
float64) and remembered as a JSON file beside the prepared data; a folder that cannot be
written (a read-only ``data_dir``) only means the pass is repeated."""

import dataclasses
import re

from absl import logging
import numpy as np
import tensorflow as tf

from selu_zoo import storage

_BATCH = 4096
_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Moments:
    """A split's example count, float64 per-feature mean and population variance (ddof 0,
    as Keras' ``adapt``; flattened), and its labels' mean and variance."""

    count: int
    mean: np.ndarray
    variance: np.ndarray
    label_mean: float
    label_variance: float


class Accumulator:
    """Chan et al.'s parallel update of count, mean and sum of squared deviations."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, batch):
        batch = np.asarray(batch, np.float64)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(axis=0)
        centered = batch - batch_mean
        batch_m2 = np.einsum("i...,i...->...", centered, centered)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + np.square(delta) * (self.count * n / total)
        self.count = total

    @property
    def variance(self):
        return self.m2 / self.count


def compute_moments(examples):
    """The `Moments` of an unbatched ``tf.data.Dataset`` of ``(features, label)``.

    Raises:
      ValueError: if there are no examples.
    """
    features, labels = Accumulator(), Accumulator()
    for x, y in examples.batch(_BATCH).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        features.add(x.reshape(len(x), -1))
        labels.add(y)
    if features.count == 0:
        raise ValueError("the train split has no examples")
    return Moments(features.count, np.asarray(features.mean), np.asarray(features.variance),
                   float(labels.mean), float(labels.variance))


def _cache_path(folder, split_spec):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", split_spec)
    return storage.join(folder, f"selu_zoo-moments-{name}.json")


def _load(path):
    try:
        record = storage.read_json(path, fix="")
        moments = Moments(int(record["count"]), np.asarray(record["mean"], np.float64),
                          np.asarray(record["variance"], np.float64),
                          float(record["label_mean"]), float(record["label_variance"]))
    except (storage.StorageError, KeyError, TypeError, ValueError):
        return None
    if record.get("version") != _VERSION or moments.mean.shape != moments.variance.shape:
        return None
    return moments


def train_moments(examples, folder, split_spec):
    """The `Moments` of a split: remembered in ``folder``, else computed from ``examples``
    and remembered under the name of ``split_spec``."""
    path = _cache_path(folder, split_spec)
    moments = _load(path) if storage.exists(path) else None
    if moments is not None:
        return moments
    moments = compute_moments(examples)
    try:
        remember(folder, split_spec, moments)
    except storage.StorageError as error:
        logging.debug("not remembering the statistics: %s", error)
    return moments


def remember(folder, split_spec, moments):
    """Stores a split's `Moments` in ``folder``, where `train_moments` finds them.

    Raises:
      storage.StorageError: If the file cannot be written.
    """
    storage.write_json(_cache_path(folder, split_spec), {
        "version": _VERSION, "count": moments.count, "mean": np.asarray(moments.mean).tolist(),
        "variance": np.asarray(moments.variance).tolist(), "label_mean": moments.label_mean,
        "label_variance": moments.label_variance})
