"""Datasets for selu_zoo: offline TFDS builders and tf.data pipelines.

Embedded datasets (`EMBEDDED_DATASETS`) are prepared locally on first use, with no
network: ``digits``, ``breast_cancer``, ``wine`` and ``iris`` from scikit-learn's
packaged UCI files (stratified 60/20/20 splits, fixed seed), and the generated
``adding_problem`` (T=50 by default; ``adding_problem/t100``, ``/t200``, ``/t400``).
Any other TFDS catalog name is read from a ``data_dir`` where it was prepared
beforehand; it is never downloaded (`DatasetNotAvailableError` otherwise).

Example::

    datasets, info = make_datasets("digits", 64, feature_shape=(8, 8, 1))
    normalize = keras.layers.Normalization(mean=info.mean, variance=info.variance)

See `selu_zoo.datasets.builders` for the split sizes and
`selu_zoo.datasets.pipeline` for the pipeline details.
"""

from selu_zoo.datasets.builders import ADDING_PROBLEM_LENGTHS
from selu_zoo.datasets.builders import ADDING_PROBLEM_SEED
from selu_zoo.datasets.builders import ADDING_PROBLEM_SIZES
from selu_zoo.datasets.builders import adding_problem_arrays
from selu_zoo.datasets.builders import AddingProblemConfig
from selu_zoo.datasets.builders import EMBEDDED_BUILDERS
from selu_zoo.datasets.builders import EMBEDDED_DATASETS
from selu_zoo.datasets.builders import embedded_builder
from selu_zoo.datasets.builders import HOLDOUT_FRACTION
from selu_zoo.datasets.builders import SeluZooAddingProblem
from selu_zoo.datasets.builders import SeluZooBreastCancer
from selu_zoo.datasets.builders import SeluZooDigits
from selu_zoo.datasets.builders import SeluZooIris
from selu_zoo.datasets.builders import SeluZooWine
from selu_zoo.datasets.builders import SPLIT_SEED
from selu_zoo.datasets.builders import SPLITS
from selu_zoo.datasets.builders import stratified_split_indices
from selu_zoo.datasets.pipeline import CATALOG_VALIDATION_PERCENT
from selu_zoo.datasets.pipeline import CLASSIFICATION
from selu_zoo.datasets.pipeline import DatasetInfo
from selu_zoo.datasets.pipeline import DatasetNotAvailableError
from selu_zoo.datasets.pipeline import load_arrays
from selu_zoo.datasets.pipeline import load_info
from selu_zoo.datasets.pipeline import make_datasets
from selu_zoo.datasets.pipeline import REGRESSION

__all__ = [
    "ADDING_PROBLEM_LENGTHS",
    "ADDING_PROBLEM_SEED",
    "ADDING_PROBLEM_SIZES",
    "AddingProblemConfig",
    "CATALOG_VALIDATION_PERCENT",
    "CLASSIFICATION",
    "DatasetInfo",
    "DatasetNotAvailableError",
    "EMBEDDED_BUILDERS",
    "EMBEDDED_DATASETS",
    "HOLDOUT_FRACTION",
    "REGRESSION",
    "SPLITS",
    "SPLIT_SEED",
    "SeluZooAddingProblem",
    "SeluZooBreastCancer",
    "SeluZooDigits",
    "SeluZooIris",
    "SeluZooWine",
    "adding_problem_arrays",
    "embedded_builder",
    "load_arrays",
    "load_info",
    "make_datasets",
    "stratified_split_indices",
]
