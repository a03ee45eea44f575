"""A user's tabular files as TFDS datasets: CSV (``csv:PATH``).

What a user gives: ``csv:`` dataset names (`parse_spec`), `CsvOptions` and `CsvError`.
"""

from selu_zoo.datasets.tabular.spec import CLASSIFICATION
from selu_zoo.datasets.tabular.spec import CsvError
from selu_zoo.datasets.tabular.spec import CsvOptions
from selu_zoo.datasets.tabular.spec import is_csv
from selu_zoo.datasets.tabular.spec import parse_spec
from selu_zoo.datasets.tabular.spec import REGRESSION
from selu_zoo.datasets.tabular.spec import SPLITS

__all__ = [
    "CLASSIFICATION",
    "CsvError",
    "CsvOptions",
    "REGRESSION",
    "SPLITS",
    "is_csv",
    "parse_spec",
]
