"""Datasets for selu_zoo: one call opens a dataset and gives its info and its splits.

    data = open_dataset("digits", feature_shape=(8, 8, 1))
    data.info.num_examples, data.info.mean, data.info.label_names
    train = data.batches("train", 64, shuffle_seed=0)
    probe, _ = data.take("validation", 256)

Names: the embedded datasets (`EMBEDDED_DATASETS`, prepared offline on first use from the
UCI files of the scikit-learn wheel, or generated), ``csv:PATH`` for a user's CSV files,
and TFDS catalog names (``mnist``, ``fashion_mnist``, ``cifar10``, ...), downloaded when
``download=True`` and the network is there. See `selu_zoo.datasets.pipeline` for how reads
are planned (each split read from disk once per run when it fits in memory; streamed
otherwise).
"""

from selu_zoo.datasets.builders import (
    ADDING_PROBLEM_LENGTHS, ADDING_PROBLEM_SEED, ADDING_PROBLEM_SIZES, adding_problem_arrays,
    AddingProblemConfig, EMBEDDED_BUILDERS, EMBEDDED_DATASETS, embedded_builder,
    HOLDOUT_FRACTION, SeluZooAddingProblem, SeluZooBreastCancer, SeluZooDigits, SeluZooIris,
    SeluZooWine, SPLIT_SEED, stratified_split_indices)
from selu_zoo.datasets.pipeline import (
    CACHE_LIMIT_BYTES, Dataset, DatasetInfo, open_dataset, SPLITS, TEST, TRAIN, VALIDATION)
from selu_zoo.datasets.sources import (
    CATALOG_VALIDATION_PERCENT, CLASSIFICATION, DatasetNotAvailableError, REGRESSION)

__all__ = [
    "ADDING_PROBLEM_LENGTHS", "ADDING_PROBLEM_SEED", "ADDING_PROBLEM_SIZES",
    "AddingProblemConfig", "CACHE_LIMIT_BYTES", "CATALOG_VALIDATION_PERCENT", "CLASSIFICATION",
    "Dataset", "DatasetInfo", "DatasetNotAvailableError", "EMBEDDED_BUILDERS",
    "EMBEDDED_DATASETS", "HOLDOUT_FRACTION", "REGRESSION", "SPLITS", "SPLIT_SEED", "TEST",
    "TRAIN", "VALIDATION", "SeluZooAddingProblem", "SeluZooBreastCancer", "SeluZooDigits",
    "SeluZooIris", "SeluZooWine", "adding_problem_arrays", "embedded_builder", "open_dataset",
    "stratified_split_indices"]
