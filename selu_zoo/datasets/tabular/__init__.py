"""A user's tabular files as TFDS datasets: CSV (``csv:PATH``) and NumPy ``.npz`` (``npz:PATH``).

``csv:data.csv`` is one file split 60/20/20 (stratified for classification, random for
regression, both seeded); ``csv:train.csv,validation.csv,test.csv`` gives the splits as
three files; `CsvOptions.split_column` gives them as a column. Paths are any
``tf.io.gfile`` path (local, ``gs://``, ``ram://``, ...).

The files are prepared once into ``data_dir`` (``<data_dir>/selu_zoo_csv/<file stem>_<key>/
1.0.0``), keyed by a SHA-256 of the files' bytes and of the options: an edited file, or other
options, are prepared again; an unchanged one is reused after one read that hashes it.

CSV rules:

* pyarrow parses the file: UTF-8 (another encoding is refused in one line), an optional BOM,
  quoted fields, any line ending, blank lines skipped, ``.gz`` and ``.bz2`` by extension; the
  separator is detected from the first line (``,`` ``;`` tab ``|``). Line numbers in
  messages count every physical line, the header included (1-based).
* ``header="auto"``: the first row is a header when one of its fields is a name (neither a
  number nor a missing-value token) where the second row holds a number.
* Features: every column except the label, the split column and `CsvOptions.exclude_columns`,
  in file order, as float32. Missing values are empty fields and the tokens in
  `MISSING_TOKENS` (any case); with ``missing="mean"`` a feature's missing values become its
  train-split mean.
* Labels (``task="auto"``): numbers that are all integer-valued, or any non-number, make a
  classification task; other numbers a regression task. Class names are kept as strings,
  sorted numerically when every class is a number (``"1.0"`` and ``"1"`` are one class,
  ``"1"``) and by code point otherwise.

Every bad file raises `CsvError` (a ``ValueError``) with one line that names the file, the
column (name and index) and the line where there is one, before anything is published.

Splits of one file: each class gives ``round(0.2 * n_class)`` random rows (seeded) to
validation and as many to test, so every class of at least 3 rows is in every split; a
regression file is split the same way as one class.

The prepared data is a TFDS dataset read with ``tfds.builder_from_directory``, whose
examples are blocks of up to `BLOCK_ROWS` rows (a TFDS example per row costs about ten
times the whole preparation in serialization alone); see `prepare_csv`.
"""

from selu_zoo.datasets.tabular.csv_file import MISSING_TOKENS
from selu_zoo.datasets.tabular.preparation import BLOCK_ROWS
from selu_zoo.datasets.tabular.preparation import default_data_dir
from selu_zoo.datasets.tabular.preparation import file_sha256
from selu_zoo.datasets.tabular.preparation import MAX_CLASSES
from selu_zoo.datasets.tabular.preparation import NAME
from selu_zoo.datasets.tabular.preparation import prepare
from selu_zoo.datasets.tabular.preparation import prepare_csv
from selu_zoo.datasets.tabular.preparation import prepare_npz
from selu_zoo.datasets.tabular.preparation import VERSION
from selu_zoo.datasets.tabular.spec import CLASSIFICATION
from selu_zoo.datasets.tabular.spec import CsvError
from selu_zoo.datasets.tabular.spec import CsvOptions
from selu_zoo.datasets.tabular.spec import is_csv
from selu_zoo.datasets.tabular.spec import is_npz
from selu_zoo.datasets.tabular.spec import parse_spec
from selu_zoo.datasets.tabular.spec import REGRESSION
from selu_zoo.datasets.tabular.spec import SPLITS

__all__ = [
    "BLOCK_ROWS",
    "CLASSIFICATION",
    "CsvError",
    "CsvOptions",
    "MAX_CLASSES",
    "MISSING_TOKENS",
    "NAME",
    "REGRESSION",
    "SPLITS",
    "VERSION",
    "default_data_dir",
    "file_sha256",
    "is_csv",
    "is_npz",
    "parse_spec",
    "prepare",
    "prepare_csv",
    "prepare_npz",
]
