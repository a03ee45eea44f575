"""Offline TFDS builders of the datasets embedded in selu_zoo (`EMBEDDED_BUILDERS`).

``digits``, ``breast_cancer``, ``wine`` and ``iris`` come from the UCI files the scikit-learn
wheel ships, split 60/20/20 (stratified, seeded by `SPLIT_SEED`); ``adding_problem`` is
generated from a seed. Their TFDS names carry a ``selu_zoo_`` prefix, so they never clash
with catalog datasets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from typing import Callable, Iterator, Mapping

from absl import logging
import numpy as np
from sklearn import datasets as sk_datasets
from sklearn import model_selection
import tensorflow_datasets as tfds

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)

# Seed of the stratified UCI splits; changing it changes the data, so bump VERSION too.
SPLIT_SEED = 2017
# Fraction of all examples in validation and in test (each rounded to an integer count).
HOLDOUT_FRACTION = 0.2

ADDING_PROBLEM_SEED = 1997
ADDING_PROBLEM_SIZES = {TRAIN: 4000, VALIDATION: 1000, TEST: 1000}
ADDING_PROBLEM_LENGTHS = (50, 100, 200, 400)


def stratified_split_indices(labels: np.ndarray, *, seed: int = SPLIT_SEED,
                             holdout_fraction: float = HOLDOUT_FRACTION
                             ) -> dict[str, np.ndarray]:
    """Splits example indices into stratified train/validation/test sets; validation and
    test each receive ``round(holdout_fraction * n)`` examples.

    Args:
      labels: 1-D integer class labels, one per example.
      seed: Random state of both cuts.
      holdout_fraction: Fraction of the examples in each of validation and test.

    Returns:
      A dict from split name to the sorted int64 indices of its examples.

    Raises:
      ValueError: If ``holdout_fraction`` is not in (0, 0.5) or a split would be empty.
    """
    labels = np.asarray(labels)
    if not 0.0 < holdout_fraction < 0.5:
        raise ValueError(f"holdout_fraction must be in (0, 0.5), got {holdout_fraction}")
    num_holdout = int(round(holdout_fraction * len(labels)))
    if num_holdout == 0:
        raise ValueError(f"{len(labels)} examples are too few for a three-way split")
    indices = np.arange(len(labels), dtype=np.int64)
    rest, test = model_selection.train_test_split(
        indices, test_size=num_holdout, stratify=labels, random_state=seed)
    train, validation = model_selection.train_test_split(
        rest, test_size=num_holdout, stratify=labels[rest], random_state=seed)
    return {TRAIN: np.sort(train), VALIDATION: np.sort(validation), TEST: np.sort(test)}


class _SklearnClassificationBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A scikit-learn toy classification dataset: subclasses set ``name``, ``_LOADER`` (a
    ``sklearn.datasets.load_*`` function), ``_SCALE`` (features are divided by it) and
    ``_HOMEPAGE``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Seeded stratified split of scikit-learn's copy of the UCI data."}
    _LOADER: Callable[[], object]
    _SCALE = 1.0
    _HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """``(features, labels, label_names)`` of the packaged data files."""
        bunch = type(self)._LOADER()
        features = (np.asarray(bunch.data, np.float64) / self._SCALE).astype(np.float32)
        return features, np.asarray(bunch.target, np.int64), tuple(map(str, bunch.target_names))

    def _info(self) -> tfds.core.DatasetInfo:
        features, _, names = self._arrays()
        return tfds.core.DatasetInfo(
            builder=self, description=(
                f"scikit-learn's `{type(self)._LOADER.__name__}()` data, split 60/20/20 "
                f"(stratified, seed {SPLIT_SEED}). Features are divided by {self._SCALE:g}."),
            features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=features.shape[1:], dtype=np.float32),
                "label": tfds.features.ClassLabel(names=names),
                "index": tfds.features.Scalar(dtype=np.int64, doc="Row in scikit-learn's array.")}),
            supervised_keys=("features", "label"), disable_shuffling=True,
            homepage=self._HOMEPAGE)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # The data files come with scikit-learn.
        features, labels, _ = self._arrays()
        return {split: self._generate_examples(features, labels, indices)
                for split, indices in stratified_split_indices(labels).items()}

    def _generate_examples(self, features, labels, indices) -> Iterator[tuple[int, dict]]:
        for row in indices:
            row = int(row)
            yield row, {"features": features[row], "label": labels[row], "index": row}


class SeluZooDigits(_SklearnClassificationBuilder, skip_registration=True):
    """UCI optical recognition of handwritten digits (8x8 pixels, 10 classes)."""

    name = "selu_zoo_digits"
    _LOADER = staticmethod(sk_datasets.load_digits)
    _SCALE = 16.0  # Pixel counts are 0..16.
    _HOMEPAGE = "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits"


class SeluZooBreastCancer(_SklearnClassificationBuilder, skip_registration=True):
    """UCI breast cancer Wisconsin (diagnostic): 30 features, 2 classes."""

    name = "selu_zoo_breast_cancer"
    _LOADER = staticmethod(sk_datasets.load_breast_cancer)
    _HOMEPAGE = "https://archive.ics.uci.edu/dataset/17/breast+cancer+wisconsin+diagnostic"


class SeluZooWine(_SklearnClassificationBuilder, skip_registration=True):
    """UCI wine recognition: 13 features, 3 classes."""

    name = "selu_zoo_wine"
    _LOADER = staticmethod(sk_datasets.load_wine)
    _HOMEPAGE = "https://archive.ics.uci.edu/dataset/109/wine"


class SeluZooIris(_SklearnClassificationBuilder, skip_registration=True):
    """Fisher's iris: 4 features, 3 classes."""

    name = "selu_zoo_iris"
    _LOADER = staticmethod(sk_datasets.load_iris)
    _HOMEPAGE = "https://archive.ics.uci.edu/dataset/53/iris"


def adding_problem_arrays(num_examples: int, sequence_length: int, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Draws examples of the adding problem: channel 0 is uniform in [0, 1), channel 1 marks
    one step in each half, and the target is the sum of the two marked values.

    Args:
      num_examples: Number of sequences.
      sequence_length: Steps per sequence, at least 2.
      rng: Source of randomness.

    Returns:
      ``(sequences, targets)`` with shapes ``(num_examples, sequence_length, 2)`` and
      ``(num_examples,)``, both float32.

    Raises:
      ValueError: If ``sequence_length < 2`` or ``num_examples < 0``.
    """
    if sequence_length < 2 or num_examples < 0:
        raise ValueError(f"need sequence_length >= 2 and num_examples >= 0, got "
                         f"{sequence_length} and {num_examples}")
    half = sequence_length // 2
    values = rng.random((num_examples, sequence_length), dtype=np.float32)
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, sequence_length, size=num_examples)
    rows = np.arange(num_examples)
    markers = np.zeros_like(values)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]  # float32 + float32
    return np.stack([values, markers], axis=-1), targets.astype(np.float32)


@dataclasses.dataclass(eq=False)
class AddingProblemConfig(tfds.core.BuilderConfig):
    """The adding problem's steps per sequence, and its seed: split ``k`` of `SPLITS` draws
    from ``SeedSequence([seed, k])``."""

    sequence_length: int = 50
    seed: int = ADDING_PROBLEM_SEED


class SeluZooAddingProblem(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The adding problem (Hochreiter & Schmidhuber 1997), configs ``t50`` (the default),
    ``t100``, ``t200`` and ``t400`` of `ADDING_PROBLEM_SIZES` examples."""

    name = "selu_zoo_adding_problem"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Seeded generation, markers in each half."}
    BUILDER_CONFIGS = [AddingProblemConfig(name=f"t{length}", sequence_length=length,
                                           description=f"Sequences of {length} steps.")
                       for length in ADDING_PROBLEM_LENGTHS]
    DEFAULT_CONFIG_NAME = "t50"

    def _info(self) -> tfds.core.DatasetInfo:
        length = self.builder_config.sequence_length
        return tfds.core.DatasetInfo(
            builder=self, description=(
                f"Adding problem with T={length}: channel 0 uniform [0, 1), channel 1 "
                "marks one step in each half; the target is the sum of the two marked "
                f"values. Generated from seed {self.builder_config.seed}."),
            features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=(length, 2), dtype=np.float32),
                "target": tfds.features.Scalar(dtype=np.float32)}),
            supervised_keys=("features", "target"), disable_shuffling=True,
            citation=("Hochreiter & Schmidhuber (1997), Long short-term memory; "
                      "Le, Jaitly & Hinton (2015), arXiv:1504.00941."))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Generated data.
        config = self.builder_config
        generators = {}
        for index, split in enumerate(SPLITS):
            rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
            sequences, targets = adding_problem_arrays(
                ADDING_PROBLEM_SIZES[split], config.sequence_length, rng)
            generators[split] = self._generate_examples(sequences, targets)
        return generators

    def _generate_examples(self, sequences, targets) -> Iterator[tuple[int, dict]]:
        for position, (sequence, target) in enumerate(zip(sequences, targets)):
            yield position, {"features": sequence, "target": target}


EMBEDDED_BUILDERS: Mapping[str, type[tfds.core.GeneratorBasedBuilder]] = {
    "digits": SeluZooDigits,
    "breast_cancer": SeluZooBreastCancer,
    "wine": SeluZooWine,
    "iris": SeluZooIris,
    "adding_problem": SeluZooAddingProblem,
}
EMBEDDED_DATASETS = tuple(EMBEDDED_BUILDERS)


def _config_kwargs(name: str, config: str | None) -> dict:
    """The ``config`` builder kwarg; raises ValueError if the dataset has no such config."""
    if config is None:
        return {}
    configs = [known.name for known in EMBEDDED_BUILDERS[name].BUILDER_CONFIGS]
    if config not in configs:
        raise ValueError(f"embedded dataset {name!r} has no config {config!r}; configs: "
                         f"{', '.join(configs) or 'none'}")
    return {"config": config}


def _prepare(builder_cls, builder_kwargs: dict) -> tfds.core.DatasetBuilder:
    """A builder of prepared data; a concurrent preparation's (identical) data is reused."""
    builder = builder_cls(**builder_kwargs)
    start = time.perf_counter()
    try:
        # TFDS prints download notes to stdout; there is no download: log instead.
        with contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        logging.info("Prepared %s in %s in %.2f s (no download)", builder.name,
                     builder.data_dir, time.perf_counter() - start)
    except FileExistsError:
        builder = builder_cls(**builder_kwargs)
        if not builder.is_prepared():
            raise
        logging.info("%s was prepared concurrently in %s; reusing it", builder.name,
                     builder.data_dir)
    return builder


def embedded_builder(name: str, *, data_dir: str | None = None, config: str | None = None,
                     prepare: bool = True) -> tfds.core.DatasetBuilder:
    """Returns the builder of an embedded dataset, prepared on first use without a network.

    Args:
      name: One of `EMBEDDED_DATASETS`.
      data_dir: TFDS data directory; None uses TFDS's default (``TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      config: Builder config name (only ``adding_problem`` has configs: ``t50``,
        ``t100``, ``t200``, ``t400``); None for the default.
      prepare: Whether to write the dataset to ``data_dir`` when it is not there yet.

    Returns:
      The ``tfds.core.DatasetBuilder``.

    Raises:
      ValueError: If ``name`` is not embedded or ``config`` is unknown.
    """
    if name not in EMBEDDED_BUILDERS:
        raise ValueError(f"{name!r} is not an embedded dataset; embedded: "
                         f"{', '.join(EMBEDDED_DATASETS)}")
    builder_kwargs = {"data_dir": data_dir, **_config_kwargs(name, config)}
    if prepare:
        return _prepare(EMBEDDED_BUILDERS[name], builder_kwargs)
    return EMBEDDED_BUILDERS[name](**builder_kwargs)
