"""A user's tabular files as TFDS datasets: CSV (``csv:PATH``) and NumPy ``.npz`` (``npz:PATH``).

``csv:data.csv`` is one file split 60/20/20 (stratified for classification, random for
regression, both seeded); ``csv:train.csv,validation.csv,test.csv`` gives the splits as
three files; `CsvOptions.split_column` gives them as a column. Paths are any
``tf.io.gfile`` path (local, ``gs://``, ``ram://``, ...).

The files are validated, then prepared once into ``data_dir`` and streamed from there.
The prepared folder is keyed by a SHA-256 of the files' bytes and of the options, so an
edited file, or other options, are prepared again; an unchanged one is reused after one
streaming read that hashes it. Nothing holds a file's rows in memory: the validation
pass keeps one label code and one split code per row, and the writer shuffles through
bounded buckets on disk.

CSV rules:

* Fields are parsed with Python's ``csv`` module (UTF-8, an optional BOM, quotes, any line
  ending). Blank lines are skipped; line numbers in messages count every physical line of
  the file, the header included (1-based).
* ``header="auto"``: the first row is a header when one of its fields is a name (neither a
  number nor a missing-value token) where the second row holds a number. A header of
  numbers cannot be detected: pass ``header=True``.
* Features: every column except the label, the split column and `CsvOptions.exclude_columns`,
  in file order, as float32. Missing values are empty fields and the tokens in
  `MISSING_TOKENS` (any case); with ``missing="mean"`` a feature's missing values become its
  train-split mean.
* Labels (``task="auto"``): numbers that are all integer-valued, or any non-number, make a
  classification task; other numbers make a regression task. Class names are kept as
  strings in a ``ClassLabel``, sorted numerically when every class is a number (``"1.0"``
  and ``"1"`` are one class, named ``"1"``) and by code point otherwise.

Every bad file raises `CsvError` (a ``ValueError``) with one line that names the file, the
column (name and index) and the line where there is one, before anything is written.

Splits of one file: each class gives ``round(0.2 * n_class)`` of its rows to validation
and as many to test, chosen by seeded selection sampling (`planning.selection_split`),
so every class of at least 3 rows is in every split; a regression file is split the
same way as one class.

The prepared data is an ordinary TFDS dataset
(``<data_dir>/selu_zoo_csv/<file stem>_<key>/1.0.0``),
read with ``tfds.builder_from_directory``: features ``features`` (float32 vector),
``label`` (``ClassLabel``, or float32 scalar for regression) and ``row`` (the example's
line in its CSV file, or its index in the ``.npz`` arrays); ``supervised_keys`` are
``("features", "label")``; ``info.metadata`` records the feature names, the label column,
the task, the class names, the sources and their hashes (see `prepare_csv`).

It is written with ``tf.io.TFRecordWriter`` and ``tfds.core.DatasetInfo`` rather than a
``GeneratorBasedBuilder``: TFDS's generator writer buffers up to 1 GiB of serialized
examples in memory before it spills to disk, and reads the source once per split.
``data_dir`` may be local or any URL TFDS reads (``gs://``); not ``ram://``, which
``etils.epath`` does not know.

Modules: `spec` (names, options, errors), `reading` (bytes, records, values),
`csv_source` and `npz_source` (a file's rows), `planning` (the validation pass and the
split plan), `writer` (shards and metadata), `preparation` (the entry points).
"""

from selu_zoo.datasets.tabular.planning import MAX_CLASSES
from selu_zoo.datasets.tabular.preparation import default_data_dir
from selu_zoo.datasets.tabular.preparation import prepare
from selu_zoo.datasets.tabular.preparation import prepare_csv
from selu_zoo.datasets.tabular.preparation import prepare_npz
from selu_zoo.datasets.tabular.reading import file_sha256
from selu_zoo.datasets.tabular.reading import MISSING_TOKENS
from selu_zoo.datasets.tabular.spec import CLASSIFICATION
from selu_zoo.datasets.tabular.spec import CsvError
from selu_zoo.datasets.tabular.spec import CsvOptions
from selu_zoo.datasets.tabular.spec import is_csv
from selu_zoo.datasets.tabular.spec import is_npz
from selu_zoo.datasets.tabular.spec import parse_spec
from selu_zoo.datasets.tabular.spec import REGRESSION
from selu_zoo.datasets.tabular.spec import SPLITS
from selu_zoo.datasets.tabular.writer import NAME
from selu_zoo.datasets.tabular.writer import VERSION

__all__ = [
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
