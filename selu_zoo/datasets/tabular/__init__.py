"""A user's tabular files as TFDS datasets: CSV (``csv:PATH``) and NumPy ``.npz`` (``npz:PATH``).

``csv:data.csv`` is one file split 60/20/20 (stratified for classification, random for
regression: each class gives ``round(0.2 * n)`` seeded random rows to validation and as many
to test); ``csv:train.csv,validation.csv,test.csv`` gives the splits as three files, and
`CsvOptions.split_column` as a column. Paths are any ``tf.io.gfile`` path.

A file is prepared once into ``<data_dir>/selu_zoo_csv/<file stem>_<key>/1.0.0``, keyed by a
SHA-256 of its bytes and the options: an edited file, or other options, are prepared again.
pyarrow reads it (UTF-8, a BOM, quotes, any line ending, blank lines, ``.gz``/``.bz2``, the
separator ``,`` ``;`` tab or ``|`` detected from the first line). Features are every column but
the label, the split column and `CsvOptions.exclude_columns`, as float32; missing values are
empty fields and `MISSING_TOKENS` (any case). Integer or text labels make classes (sorted
numerically when all are numbers, ``"1.0"`` and ``"1"`` being ``"1"``), other numbers a
regression target. A bad file raises `CsvError` in one line naming the file, the column and
the line (1-based, every physical line counted), before anything is published.

Each stored TFDS example is a block of up to `BLOCK_ROWS` rows: one example per row would cost
more to serialize than the whole preparation (benchmarks/data_pipeline.py).
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
