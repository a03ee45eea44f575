"""Offline TFDS builders for the datasets embedded in selu_zoo.

Five datasets work without any network access:

* ``digits``, ``breast_cancer``, ``wine`` and ``iris`` come from the UCI data files that
  the scikit-learn wheel ships (``sklearn.datasets.load_*`` only read package files).
* ``adding_problem`` is generated from a seed (Hochreiter & Schmidhuber 1997; Le et al.
  2015).

They are ordinary ``tfds.core.GeneratorBasedBuilder`` subclasses. They are created with
``skip_registration=True`` and carry a ``selu_zoo_`` prefix in their TFDS ``name`` (which
names their folder in ``data_dir``), so they never clash with catalog datasets such as
TFDS's own ``iris``; `EMBEDDED_BUILDERS` maps our public names to the classes.

Splits of the UCI datasets are stratified and seeded (`SPLIT_SEED`): 20 % of the examples
(rounded) for test, 20 % for validation, the rest for train:

=============  =====  ==========  ====  =====
dataset        train  validation  test  total
=============  =====  ==========  ====  =====
digits          1079         359   359   1797
breast_cancer    341         114   114    569
wine             106          36    36    178
iris              90          30    30    150
=============  =====  ==========  ====  =====

Each UCI example holds ``features`` (float32 vector; digits' pixels divided by 16 into
[0, 1], the other datasets' raw values), ``label`` (a ``ClassLabel`` with names) and
``index`` (the row in scikit-learn's array, for provenance). Examples are stored in row
order (``disable_shuffling=True``).
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

TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
SPLITS = (TRAIN, VALIDATION, TEST)

# Seed of the stratified UCI splits; changing it changes the data, so bump VERSION too.
SPLIT_SEED = 2017
# Fraction of all examples in validation and in test (each rounded to an integer count).
HOLDOUT_FRACTION = 0.2

ADDING_PROBLEM_SEED = 1997
ADDING_PROBLEM_SIZES = {TRAIN: 4000, VALIDATION: 1000, TEST: 1000}
ADDING_PROBLEM_LENGTHS = (50, 100, 200, 400)

_SKLEARN_HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"


def stratified_split_indices(
    labels: np.ndarray,
    *,
    seed: int = SPLIT_SEED,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> dict[str, np.ndarray]:
    """Splits example indices into stratified train/validation/test sets.

    Validation and test each receive ``round(holdout_fraction * n)`` examples; train
    receives the rest. Both cuts use ``sklearn.model_selection.train_test_split`` with
    ``stratify`` and the same ``random_state``, so the result depends only on ``labels``
    and ``seed``.

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


class _EmbeddedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the embedded builders: data comes with the code, nothing is downloaded."""


class _SklearnClassificationBuilder(_EmbeddedBuilder, skip_registration=True):
    """Base builder for a scikit-learn toy classification dataset.

    Subclasses set ``name``, ``_LOADER`` (a ``sklearn.datasets.load_*`` function),
    ``_SCALE`` (the features are divided by it), ``_HOMEPAGE`` and ``_CITATION``.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Seeded stratified split of scikit-learn's copy of the UCI data.",
    }
    _LOADER: Callable[[], object]
    _SCALE = 1.0
    _HOMEPAGE = _SKLEARN_HOMEPAGE
    _CITATION = ""

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """Reads the packaged data files.

        Returns:
          ``(features, labels, label_names)``: float32 features divided by ``_SCALE``,
          int64 labels and the class names as strings.
        """
        bunch = type(self)._LOADER()
        features = (np.asarray(bunch.data, np.float64) / self._SCALE).astype(np.float32)
        labels = np.asarray(bunch.target, np.int64)
        names = tuple(str(name) for name in bunch.target_names)
        return features, labels, names

    def _info(self) -> tfds.core.DatasetInfo:
        """Returns the dataset metadata (features, supervised keys, provenance)."""
        features, _, names = self._arrays()
        loader_name = type(self)._LOADER.__name__
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                f"scikit-learn's `{loader_name}()` data, split 60/20/20 (stratified, "
                f"seed {SPLIT_SEED}). Features are divided by {self._SCALE:g}."),
            features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(
                    shape=features.shape[1:], dtype=np.float32),
                "label": tfds.features.ClassLabel(names=names),
                "index": tfds.features.Scalar(
                    dtype=np.int64, doc="Row in scikit-learn's array."),
            }),
            supervised_keys=("features", "label"),
            disable_shuffling=True,
            homepage=self._HOMEPAGE,
            citation=self._CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        """Returns one example generator per split; nothing is downloaded."""
        del dl_manager  # The data files come with scikit-learn.
        features, labels, _ = self._arrays()
        return {
            split: self._generate_examples(features, labels, indices)
            for split, indices in stratified_split_indices(labels).items()
        }

    def _generate_examples(self, features, labels, indices) -> Iterator[tuple[int, dict]]:
        """Yields ``(row, example)`` for the given rows in ascending order."""
        for row in indices:
            row = int(row)
            yield row, {"features": features[row], "label": labels[row], "index": row}


class SeluZooDigits(_SklearnClassificationBuilder, skip_registration=True):
    """UCI optical recognition of handwritten digits (8x8 pixels, 10 classes)."""

    name = "selu_zoo_digits"
    _LOADER = staticmethod(sk_datasets.load_digits)
    _SCALE = 16.0  # Pixel counts are 0..16.
    _HOMEPAGE = ("https://archive.ics.uci.edu/dataset/80/"
                 "optical+recognition+of+handwritten+digits")


class SeluZooBreastCancer(_SklearnClassificationBuilder, skip_registration=True):
    """UCI breast cancer Wisconsin (diagnostic): 30 features, 2 classes."""

    name = "selu_zoo_breast_cancer"
    _LOADER = staticmethod(sk_datasets.load_breast_cancer)
    _HOMEPAGE = ("https://archive.ics.uci.edu/dataset/17/"
                 "breast+cancer+wisconsin+diagnostic")


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


def adding_problem_arrays(
    num_examples: int, sequence_length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draws examples of the adding problem.

    Channel 0 holds values uniform in [0, 1); channel 1 is a marker that is 1 at exactly
    two steps, one drawn uniformly from the first ``sequence_length // 2`` steps and one
    from the remaining steps. The target is the float32 sum of the two marked values.

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
        raise ValueError(
            f"need sequence_length >= 2 and num_examples >= 0, got "
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
    """Configuration of the adding problem.

    Attributes:
      sequence_length: Steps ``T`` per sequence.
      seed: Root seed; split ``k`` of `SPLITS` draws from ``SeedSequence([seed, k])``.
    """

    sequence_length: int = 50
    seed: int = ADDING_PROBLEM_SEED


class SeluZooAddingProblem(_EmbeddedBuilder, skip_registration=True):
    """The adding problem, a long-range regression task for recurrent networks.

    Configs ``t50`` (the default), ``t100``, ``t200`` and ``t400`` set the sequence
    length; every config has 4000/1000/1000 train/validation/test examples.
    """

    name = "selu_zoo_adding_problem"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Seeded generation, markers in each half."}
    BUILDER_CONFIGS = [
        AddingProblemConfig(name=f"t{length}", sequence_length=length,
                            description=f"Sequences of {length} steps.")
        for length in ADDING_PROBLEM_LENGTHS
    ]
    DEFAULT_CONFIG_NAME = "t50"

    def _info(self) -> tfds.core.DatasetInfo:
        """Returns the dataset metadata."""
        length = self.builder_config.sequence_length
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                f"Adding problem with T={length}: channel 0 uniform [0, 1), channel 1 "
                "marks one step in each half; the target is the sum of the two marked "
                f"values. Generated from seed {self.builder_config.seed}."),
            features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=(length, 2), dtype=np.float32),
                "target": tfds.features.Scalar(dtype=np.float32),
            }),
            supervised_keys=("features", "target"),
            disable_shuffling=True,
            citation=(
                "Hochreiter & Schmidhuber (1997), Long short-term memory; "
                "Le, Jaitly & Hinton (2015), arXiv:1504.00941."),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        """Returns one example generator per split; nothing is downloaded."""
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
        """Yields ``(position, example)`` in generation order."""
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
    """Returns the ``config`` builder kwarg after checking it exists.

    Raises:
      ValueError: If the embedded dataset has no config of that name.
    """
    if config is None:
        return {}
    configs = [known.name for known in EMBEDDED_BUILDERS[name].BUILDER_CONFIGS]
    if config not in configs:
        raise ValueError(
            f"embedded dataset {name!r} has no config {config!r}; configs: "
            f"{', '.join(configs) or 'none'}")
    return {"config": config}


def _prepare(builder_cls, builder_kwargs: dict) -> tfds.core.DatasetBuilder:
    """Prepares a builder's data unless present and returns a builder that reads it.

    A concurrent preparation of the same folder by another process makes TFDS's final
    rename fail with ``FileExistsError``; the winner's data is identical (it is
    deterministic), so it is reused.
    """
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


def embedded_builder(
    name: str, *, data_dir: str | None = None, config: str | None = None,
    prepare: bool = True,
) -> tfds.core.DatasetBuilder:
    """Returns the builder of an embedded dataset, prepared on first use.

    Preparation reads local files or generates data (well under a second for the
    default configs); it never touches the network: GCS is not tried and no URL is
    downloaded. Prepared data is reused.

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
