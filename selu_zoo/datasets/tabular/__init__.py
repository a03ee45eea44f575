"""A user's tabular files as TFDS datasets: CSV (``csv:PATH``) and NumPy ``.npz`` (``npz:PATH``).

One file is split 60/20/20 (seeded; stratified per class for classification); three files,
or `CsvOptions.split_column`, give the splits. A file is prepared once into
``<data_dir>/selu_zoo_csv/<file stem>_<key>/1.0.0``, keyed by a SHA-256 of its bytes and the
options, as TFDS examples of `BLOCK_ROWS` rows. A bad file raises `CsvError` in one line
naming the file, the column and the line. README.md ("Your own data") gives the format.
"""

from selu_zoo.datasets.tabular.csv_file import MISSING_TOKENS
from selu_zoo.datasets.tabular.labels import MAX_CLASSES
from selu_zoo.datasets.tabular.preparation import (
    BLOCK_ROWS, default_data_dir, file_sha256, NAME, prepare, prepare_csv, prepare_npz, VERSION)
from selu_zoo.datasets.tabular.spec import (
    CLASSIFICATION, CsvError, CsvOptions, is_csv, is_npz, parse_spec, REGRESSION, SPLITS)

__all__ = ["BLOCK_ROWS", "CLASSIFICATION", "CsvError", "CsvOptions", "MAX_CLASSES",
           "MISSING_TOKENS", "NAME", "REGRESSION", "SPLITS", "VERSION", "default_data_dir",
           "file_sha256", "is_csv", "is_npz", "parse_spec", "prepare", "prepare_csv",
           "prepare_npz"]
