"""Tests of selu_zoo.datasets.tabular: a user's CSV and .npz files as TFDS datasets."""

import bz2
import gzip
import io
import os

import numpy as np
import pytest
import tensorflow as tf

from selu_zoo.datasets import tabular
from selu_zoo.datasets.tabular import CsvError, CsvOptions, labels, preparation


def _write(path, text):
    path.write_text(text)
    return str(path)


def _prepare(tmp_path, text, name="data.csv", **options):
    return tabular.prepare_csv(_write(tmp_path / name, text), CsvOptions(**options),
                               data_dir=str(tmp_path / "tfds"))


def _examples(builder, split):
    """The rows of a split (each stored example is a block of rows)."""
    return list(builder.as_dataset(split=split).unbatch().as_numpy_iterator())


def _by_line(builder):
    """Row index in the file -> (split, features, label) over all splits."""
    rows = {}
    for split in tabular.SPLITS:
        for example in _examples(builder, split):
            assert int(example["row"]) not in rows
            rows[int(example["row"])] = (split, example["features"], example["label"])
    return rows


def _classes_csv(num_rows, labels=("a", "b"), header="f0,f1,cls\n"):
    lines = [f"{i},{i * 0.5},{labels[i % len(labels)]}" for i in range(num_rows)]
    return header + "\n".join(lines) + "\n"


def _sizes(builder):
    return builder.info.metadata["num_rows"]


# --- options and names ---------------------------------------------------------------


@pytest.mark.parametrize("kwargs, option", [
    ({"label_column": -1}, "label_column"),
    ({"label_column": 1.5}, "label_column"),
    ({"header": "maybe"}, "header"),
    ({"exclude_columns": (None,)}, "exclude_columns"),
    ({"task": "ranking"}, "task"),
    ({"split_column": ""}, "split_column"),
    ({"missing": "median"}, "missing"),
    ({"split_seed": -3}, "split_seed"),
    ({"delimiter": ";;"}, "delimiter"),
])
def test_bad_options_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=f"^{option}") as error:
        CsvOptions(**kwargs)
    assert "\n" not in str(error.value)


def test_options_normalize_command_line_values():
    options = CsvOptions(header="False", exclude_columns="id")
    assert options.header is False and options.exclude_columns == ("id",)


def test_parse_spec():
    assert tabular.parse_spec("csv:HTRU_2.csv") == ("HTRU_2.csv",)
    assert tabular.parse_spec("csv:a.csv, gs://b/v.csv ,c.csv") == (
        "a.csv", "gs://b/v.csv", "c.csv")
    assert tabular.parse_spec("npz:x.npz") == ("x.npz",)
    assert tabular.is_csv("csv:a") and not tabular.is_csv("iris")
    assert tabular.is_npz("npz:a") and not tabular.is_npz("csv:a")
    for bad in ("csv:", "csv:a,b", "csv:a,,c", "iris"):
        with pytest.raises(ValueError):
            tabular.parse_spec(bad)


# --- layouts, labels and tasks -------------------------------------------------------


def test_headed_string_labels_keep_class_names_and_values(tmp_path):
    text = _classes_csv(50, labels=("setosa", "virginica", "Versicolor"))
    builder = _prepare(tmp_path, text)
    info = builder.info
    # Lexicographic (code point) order for strings.
    assert info.features["label"].names == ["Versicolor", "setosa", "virginica"]
    assert info.metadata["class_names"] == ["Versicolor", "setosa", "virginica"]
    assert info.metadata["feature_names"] == ["f0", "f1"]
    assert info.metadata["label_column"] == "cls" and info.metadata["label_index"] == 2
    assert info.metadata["task"] == "classification" and info.metadata["header"] is True
    assert info.metadata["split"] == "stratified"
    assert info.supervised_keys == ("features", "label")
    # Each class gives round(20 %) of its rows to each holdout: 17, 17, 16 rows -> 3 each.
    assert _sizes(builder) == {"train": 32, "validation": 9, "test": 9}
    names = info.features["label"].names
    for split in ("validation", "test"):
        assert sorted(e["label"] for e in _examples(builder, split)) == [0] * 3 + [1] * 3 + [2] * 3
    for i, (_, features, label) in _by_line(builder).items():
        np.testing.assert_array_equal(features, np.float32([i, i * 0.5]))
        assert names[label] == ("setosa", "virginica", "Versicolor")[i % 3]


def test_htru2_shape_headerless_integer_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).round(4)
    y = (np.arange(60) % 6 == 0).astype(int)  # 10 positives, as unbalanced as HTRU2.
    text = "".join(",".join(map(str, row)) + f",{label}\n" for row, label in zip(x, y))
    builder = _prepare(tmp_path, text, name="HTRU_2.csv", label_column="8")
    info = builder.info
    assert info.features["features"].shape == (None, 8)  # Blocks of rows.
    assert info.features["label"].names == ["0", "1"]
    assert info.metadata["header"] is False
    assert info.metadata["feature_names"] == [f"column_{i}" for i in range(8)]
    assert info.metadata["label_column"] == "column_8"
    assert _sizes(builder) == {"train": 36, "validation": 12, "test": 12}
    rows = _by_line(builder)
    for split in ("validation", "test"):  # Stratified: 2 positives in each holdout.
        assert sum(label for s, _, label in rows.values() if s == split) == 2
    for line, (_, features, label) in rows.items():
        np.testing.assert_array_equal(features, x[line].astype(np.float32))
        assert label == y[line]


def test_integer_labels_sort_numerically_and_merge_spellings(tmp_path):
    labels = ("10", "9", "2", "2.0", " 9")
    builder = _prepare(tmp_path, _classes_csv(45, labels=labels))
    assert builder.info.features["label"].names == ["2", "9", "10"]


def test_regression_target(tmp_path):
    text = "x,target\n" + "".join(f"{i},{i / 4}\n" for i in range(20))
    builder = _prepare(tmp_path, text)
    assert builder.info.metadata["task"] == "regression"
    assert builder.info.metadata["class_names"] is None
    assert builder.info.features["label"].dtype == np.float32
    assert builder.info.metadata["split"] == "random"
    assert _sizes(builder) == {"train": 12, "validation": 4, "test": 4}
    for line, (_, features, label) in _by_line(builder).items():
        assert label == np.float32(line / 4) and features[0] == line


def test_task_override(tmp_path):
    integers = "x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(30))
    builder = _prepare(tmp_path, integers, task="regression")
    assert builder.info.metadata["task"] == "regression"
    assert builder.info.features["label"].dtype == np.float32
    floats = "x,y\n" + "".join(f"{i},{(i % 2) / 2}\n" for i in range(30))
    builder = _prepare(tmp_path, floats, name="f.csv", task="classification")
    assert builder.info.features["label"].names == ["0", "0.5"]


def test_exclude_columns_by_name_and_index(tmp_path):
    text = "id,a,note,b,y\n" + "".join(f"{i},{i},n{i},{-i},{i % 2}\n" for i in range(20))
    builder = _prepare(tmp_path, text, exclude_columns=("id", 2))
    assert builder.info.metadata["feature_names"] == ["a", "b"]
    assert builder.info.metadata["excluded_columns"] == ["id", "note"]
    for line, (_, features, _) in _by_line(builder).items():
        np.testing.assert_array_equal(features, [line, -line])


def test_label_column_by_name_digits_and_delimiter(tmp_path):
    text = "y;a;b\n" + "".join(f"{i % 2};{i};{i * 2}\n" for i in range(20))
    builder = _prepare(tmp_path, text, label_column="y", delimiter=";")
    assert builder.info.metadata["feature_names"] == ["a", "b"]
    builder = _prepare(tmp_path, text, name="digits.csv", label_column="0", delimiter=";")
    assert builder.info.metadata["label_column"] == "y"


def test_bom_crlf_and_quoted_fields(tmp_path):
    rows = "".join(f'{i},"{("x, y", "z")[i % 2]}"\r\n' for i in range(20))
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeffsize,\"kind, quoted\"\r\n" + rows).encode("utf-8"))
    builder = tabular.prepare_csv(str(path), data_dir=str(tmp_path / "tfds"))
    assert builder.info.metadata["feature_names"] == ["size"]
    assert builder.info.metadata["label_column"] == "kind, quoted"
    assert builder.info.features["label"].names == ["x, y", "z"]
    assert sorted(_by_line(builder)) == list(range(20))


@pytest.mark.parametrize("block_bytes", [None, 1024])
def test_quoted_values_spanning_lines(tmp_path, monkeypatch, block_bytes):
    """A whole file is read in parallel blocks first; a block boundary inside a quoted value
    (forced with 1 KiB blocks) makes pyarrow's parallel read fail, and the file is read again
    with values that span lines."""
    from selu_zoo.datasets.tabular import csv_file  # noqa: PLC0415

    if block_bytes:
        monkeypatch.setattr(csv_file, "BLOCK_BYTES", block_bytes)
    rows = "".join(f'{i},{i / 7:.5f},"a note of\ntwo lines, {i}",{"ab"[i % 2]}\n'
                   for i in range(400))
    builder = _prepare(tmp_path, "a,b,note,kind\n" + rows, exclude_columns=("note",))
    assert builder.info.features["label"].names == ["a", "b"]
    by_line = _by_line(builder)
    assert sorted(by_line) == list(range(400))
    for row, (_, features, label) in by_line.items():
        np.testing.assert_allclose(features, [row, row / 7], rtol=1e-4)
        assert label == row % 2


def test_forced_header_of_numbers(tmp_path):
    text = "1,2,3\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20))
    builder = _prepare(tmp_path, text, header=True)
    assert builder.info.metadata["feature_names"] == ["1", "2"]
    assert sum(_sizes(builder).values()) == 20


def test_separate_split_files(tmp_path):
    paths = []
    for name, count in (("train", 7), ("valid", 3), ("test", 2)):
        paths.append(_write(tmp_path / f"{name}.csv", _classes_csv(count)))
    builder = tabular.prepare(f"csv:{','.join(paths)}", data_dir=str(tmp_path / "tfds"))
    assert _sizes(builder) == {"train": 7, "validation": 3, "test": 2}
    assert builder.info.metadata["split"] == "files"
    assert builder.info.metadata["paths"] == paths
    assert len(builder.info.metadata["sha256"]) == 3


def test_separate_split_files_may_lack_the_header(tmp_path):
    train = _write(tmp_path / "train.csv", _classes_csv(6))
    rest = [_write(tmp_path / f"{n}.csv", _classes_csv(2, header="")) for n in ("v", "t")]
    builder = tabular.prepare_csv([train, *rest], CsvOptions(label_column="cls"),
                                  data_dir=str(tmp_path / "tfds"))
    assert _sizes(builder) == {"train": 6, "validation": 2, "test": 2}


def test_split_column(tmp_path):
    splits = ["train"] * 6 + ["Validation"] * 2 + [" test "] * 2
    text = "a,split,y\n" + "".join(f"{i},{s},{i % 2}\n" for i, s in enumerate(splits))
    builder = _prepare(tmp_path, text, split_column="split")
    assert _sizes(builder) == {"train": 6, "validation": 2, "test": 2}
    assert builder.info.metadata["feature_names"] == ["a"]
    assert builder.info.metadata["split_column"] == "split"
    for line, (split, _, _) in _by_line(builder).items():
        assert split == splits[line].strip().lower()


def test_missing_values_take_the_train_mean(tmp_path):
    gaps = ("", " NA ", "n/A")  # Spellings pyarrow reads as missing, and one it does not.
    rows = [f"{i},{gaps[i % 3] if i % 5 == 0 else i * 10},{i % 2}" for i in range(30)]
    text = "a,b,y\n" + "\n".join(rows) + "\n"
    builder = _prepare(tmp_path, text, missing="mean")
    by_line = _by_line(builder)
    train_b = [float(line.split(",")[1]) for number, line in enumerate(rows)
               if by_line[number][0] == "train" and number % 5]
    mean = np.float32(np.mean(train_b))
    assert builder.info.metadata["imputed_means"] == {"b": pytest.approx(np.mean(train_b))}
    for number, line in enumerate(rows):
        expected = mean if number % 5 == 0 else np.float32(line.split(",")[1])
        assert by_line[number][1][1] == expected


def test_holdout_split_is_exact_per_class_and_seeded():
    codes = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [3, 10, 101]))
    split = labels.holdout_split
    first = split(codes, ("a", "b", "c"), 7, "here")
    for code, count in enumerate([3, 10, 101]):
        got = np.bincount(first[codes == code], minlength=3)
        holdout = round(0.2 * count)
        assert got.tolist() == [count - 2 * holdout, holdout, holdout]
    again = split(codes, ("a", "b", "c"), 7, "here")
    other = split(codes, ("a", "b", "c"), 8, "here")
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


def test_many_rows_go_through_buckets_on_disk_in_random_order(tmp_path, monkeypatch):
    monkeypatch.setattr(preparation, "_MEMORY_BYTES", 0)  # Buckets on disk,
    monkeypatch.setattr(preparation, "_BUCKET_BYTES", 600)  # of about 75 rows each,
    monkeypatch.setattr(preparation, "BLOCK_ROWS", 5)  # stored in blocks of 5 rows.
    text = "x,y\n" + "".join(f"{i},{i * 2 // 300}\n" for i in range(300))  # Sorted.
    builder = _prepare(tmp_path, text)
    shards = {name: split.num_shards for name, split in builder.info.splits.items()}
    assert shards["train"] > 1 and len(set(shards.values())) == 1  # A shard per bucket.
    assert sorted(_by_line(builder)) == list(range(300))
    assert not [name for name in os.listdir(builder.data_dir) if "bucket" in name]
    first = [int(e["label"]) for e in _examples(builder, "train")[:60]]
    assert 20 < sum(first) < 40  # Both classes among the first rows read (12 blocks).


# --- preparation: hashing, reuse, concurrency, storage -------------------------------


def test_edited_file_is_prepared_again_and_unchanged_one_reused(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    data_dir = str(tmp_path / "tfds")
    _write(path, _classes_csv(20))
    first = tabular.prepare_csv(str(path), data_dir=data_dir)
    info_file = os.path.join(first.data_dir, "dataset_info.json")
    mtime = os.stat(info_file).st_mtime_ns

    def no_writing(*args, **kwargs):
        raise AssertionError("prepared again")

    with monkeypatch.context() as patch:
        patch.setattr(preparation, "_write_dataset", no_writing)
        again = tabular.prepare_csv(str(path), data_dir=data_dir)
    assert again.data_dir == first.data_dir and os.stat(info_file).st_mtime_ns == mtime

    _write(path, _classes_csv(20).replace("\n3,", "\n33,"))
    edited = tabular.prepare_csv(str(path), data_dir=data_dir)
    assert edited.data_dir != first.data_dir
    assert edited.info.metadata["content_hash"] != first.info.metadata["content_hash"]
    assert 33 in {int(features[0]) for _, features, _ in _by_line(edited).values()}
    other_options = tabular.prepare_csv(str(path), CsvOptions(split_seed=1), data_dir=data_dir)
    assert other_options.data_dir not in (edited.data_dir, first.data_dir)


def test_concurrent_preparation_keeps_the_first(tmp_path, monkeypatch):
    path = _write(tmp_path / "data.csv", _classes_csv(20))
    data_dir = tmp_path / "tfds"
    first = tabular.prepare_csv(path, data_dir=str(data_dir))
    real, calls = preparation.is_prepared, []

    def not_yet(directory):  # As if another process published while this one wrote.
        calls.append(directory)
        return len(calls) > 1 and real(directory)

    monkeypatch.setattr(preparation, "is_prepared", not_yet)
    second = tabular.prepare_csv(path, data_dir=str(data_dir))
    assert len(calls) == 2  # Checked before writing, and after the rename found it taken.
    assert second.data_dir == first.data_dir
    parent = os.path.dirname(first.data_dir)
    assert os.listdir(parent) == ["1.0.0"]  # The loser's temporary folder is gone.


def test_ram_path(tmp_path):
    path = "ram://selu_zoo_tabular_test/data.csv"
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(_classes_csv(20))
    builder = tabular.prepare_csv(path, data_dir=str(tmp_path / "tfds"))
    assert builder.info.metadata["paths"] == [path]
    assert sum(_sizes(builder).values()) == 20
    assert os.path.basename(os.path.dirname(builder.data_dir)).startswith("data_")


def test_npz(tmp_path):
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x, y=np.array(["cat", "dog"] * 10))
    path = tmp_path / "data.npz"
    path.write_bytes(buffer.getvalue())
    builder = tabular.prepare(f"npz:{path}", data_dir=str(tmp_path / "tfds"))
    assert builder.info.features["label"].names == ["cat", "dog"]
    assert builder.info.metadata["feature_names"] == ["x_0", "x_1", "x_2"]
    for row, (_, features, label) in _by_line(builder).items():
        np.testing.assert_array_equal(features, x[row])
        assert label == row % 2
    with pytest.raises(ValueError, match="^label_column does not apply"):
        tabular.prepare_npz(str(path), CsvOptions(label_column=0), str(tmp_path / "tfds"))
    np.savez(path, x=x)
    with pytest.raises(CsvError, match=f"^{path}: no array 'y'"):
        tabular.prepare_npz(str(path), data_dir=str(tmp_path / "tfds"))
    x[3, 1] = np.nan
    np.savez(path, x=x, y=np.arange(20) % 2)
    with pytest.raises(CsvError, match=rf"^{path}, x\[3\] \(feature 1\): missing value"):
        tabular.prepare_npz(str(path), data_dir=str(tmp_path / "tfds"))


# --- bad files -----------------------------------------------------------------------

_TEN = "".join(f"{i},{i},{i % 2}\n" for i in range(10))

BAD_FILES = {
    "empty": ("", {}, ["the file is empty"]),
    "blank lines only": ("\n  \n\n", {}, ["the file is empty"]),
    "header only": ("a,b,y\n", {}, ["no data rows", "line 1", "header"]),
    "non-numeric feature": ("a,b,y\n1,2,0\n1,x,1\n" + _TEN, {},
                            ["line 3, column 'b' (index 1)", "'x' is not a number"]),
    "non-numeric, no header": ("1,2,0\n\n1,2,1\n1,x,1\n", {},
                               ["line 4, column 1:", "'x' is not a number"]),
    "infinite feature": ("a,b,y\n1,2,0\n1,-inf,1\n", {},
                         ["line 3, column 'b' (index 1)", "not a finite float32 number"]),
    "float32 overflow": ("a,b,y\n1,2,0\n1e39,2,1\n", {},
                         ["line 3, column 'a' (index 0)", "not a finite float32 number"]),
    "missing value": ("a,b,y\n1,2,0\n1,NA,1\n", {},
                      ["line 3, column 'b' (index 1)", "missing value 'NA'",
                       "config.missing_values='mean'"]),
    "missing label": ("a,b,y\n1,2,0\n1,2,\n", {},
                      ["line 3, column 'y' (index 2)", "missing label"]),
    "label name not there": ("a,b,y\n1,2,0\n", {"label_column": "class"},
                             ["no label column 'class'", "columns: 0 'a', 1 'b', 2 'y'"]),
    "label index not there": ("1,2,0\n1,2,1\n", {"label_column": 3},
                              ["no label column 3", "no header and 3 columns"]),
    "label name, no header": ("1,2,0\n1,2,1\n", {"label_column": "y"},
                              ["no label column 'y'", "no header"]),
    "single class": ("a,b,y\n" + "".join(f"{i},{i},1\n" for i in range(10)), {},
                     ["column 'y' (index 2)", "a single class '1' in 10 rows"]),
    "too few rows": ("a,b,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(5)), {},
                     ["column 'y' (index 2)", "5 data rows are too few", "at least 3 rows",
                      "class '1' has 2"]),
    "too few of a class": ("a,b,y\n" + "".join(f"{i},{i},{int(i < 2)}\n" for i in range(20)),
                           {}, ["column 'y' (index 2)", "class '1' has 2"]),
    "too few for regression": ("a,y\n1,0.5\n2,1.5\n", {}, ["2 data rows", "at least 3"]),
    "ragged rows": ("a,b,y\n1,2,0\n1,2\n", {},
                    ["line 3: 2 fields, but line 1 has 3"]),
    "bad split value": ("a,s,y\n1,train,0\n2,dev,1\n", {"split_column": "s"},
                        ["line 3, column 's' (index 1)", "'dev' is not one of train"]),
    "empty split": ("a,s,y\n" + "".join(f"{i},train,{i % 2}\n" for i in range(9)) +
                    "9,test,1\n", {"split_column": 1},
                    ["column 's' (index 1): no rows for the validation split"]),
    "unknown excluded column": ("a,b,y\n1,2,0\n", {"exclude_columns": ("a", "zz")},
                                ["no column to exclude 'zz'", "columns: 0 'a'"]),
    "excluded label": ("a,b,y\n1,2,0\n", {"exclude_columns": (2,)},
                       ["exclude_columns holds the label, column 'y' (index 2)"]),
    "regression label not a number": ("a,y\n1,0.5\n2,cat\n", {"task": "regression"},
                                      ["line 3, column 'y' (index 1)", "'cat' is not a number"]),
    "infinite label": ("a,y\n1,0.5\n2,inf\n", {},
                       ["line 3, column 'y' (index 1)", "'inf' is not a finite float32"]),
    "not UTF-8": (b"a,y\n1,0\n\xff\xfe,1\n", {}, ["line 3: not UTF-8"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_fails_in_one_line_naming_file_column_and_row(tmp_path, case):
    content, options, expected = BAD_FILES[case]
    path = tmp_path / "bad.csv"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(CsvError) as error:
        tabular.prepare_csv(str(path), CsvOptions(**options), data_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message
    for part in expected:
        assert part in message
    # Nothing is left behind (buckets are written to a temporary folder while reading).
    assert not [name for _, _, names in os.walk(tmp_path / "tfds") for name in names]


def test_separate_files_with_other_columns(tmp_path):
    train = _write(tmp_path / "train.csv", _classes_csv(6))
    valid = _write(tmp_path / "valid.csv", _classes_csv(2, header="f0,g1,cls\n"))
    test = _write(tmp_path / "test.csv", "1,0\n2,1\n")
    for paths, expected in (([train, valid, train], f"{valid}: column 1 is 'g1', but in "
                             f"{train} it is 'f1'"),
                            ([train, train, test], f"{test}: 2 columns, but {train} has 3")):
        with pytest.raises(CsvError) as error:
            tabular.prepare_csv(paths, data_dir=str(tmp_path / "tfds"))
        assert str(error.value).startswith(expected)


def test_missing_file_and_split_column_with_three_files(tmp_path):
    with pytest.raises(CsvError, match="no such file"):
        tabular.prepare_csv(str(tmp_path / "nope.csv"), data_dir=str(tmp_path / "tfds"))
    path = _write(tmp_path / "a.csv", _classes_csv(3))
    with pytest.raises(ValueError, match="split_column does not apply"):
        tabular.prepare_csv([path] * 3, CsvOptions(split_column="cls"), str(tmp_path / "t"))


_PLAIN = "a,b,kind\n" + "".join(f"{i * 0.5},\"{-i}\",{'xyz'[i % 3]}\n" for i in range(30))


@pytest.mark.parametrize("name,encode", [
    ("semicolon.csv", lambda text: text.replace(",", ";").encode()),
    ("tab.tsv", lambda text: text.replace(",", "\t").encode()),
    ("pipe.csv", lambda text: text.replace(",", "|").encode()),
    ("bom_crlf_blank.csv", lambda text: ("\ufeff" + text.replace("\n", "\r\n\r\n")).encode()),
    ("data.csv.gz", lambda text: gzip.compress(text.encode())),
    ("data.csv.bz2", lambda text: bz2.compress(text.replace(",", ";").encode())),
])
def test_separators_compression_bom_and_blank_lines_read_as_the_plain_file(tmp_path, name,
                                                                            encode):
    """The separator is detected (, ; tab |), .gz and .bz2 are read by their extension."""
    (tmp_path / "plain").mkdir()
    expected = _by_line(_prepare(tmp_path / "plain", _PLAIN, label_column="kind"))
    path = tmp_path / name
    path.write_bytes(encode(_PLAIN))
    builder = tabular.prepare_csv(str(path), CsvOptions(label_column="kind"),
                                  data_dir=str(tmp_path / "tfds"))
    got = _by_line(builder)
    assert len(got) == len(expected) == 30
    # In file order (blank lines shift the line numbers): the same split, features and label.
    for (e_split, e_features, e_label), (g_split, g_features, g_label) in zip(
            (expected[k] for k in sorted(expected)), (got[k] for k in sorted(got))):
        np.testing.assert_array_equal(g_features, e_features)
        assert (g_split, g_label) == (e_split, e_label)


def test_a_semicolon_gz_file_trains_through_the_dataset_api(tmp_path, monkeypatch, caplog):
    """Its train statistics come with the preparation: opening it reads no rows, and TFDS
    logs no deprecation of what we read (``TensorInfo.dtype``)."""
    import keras

    from _reads import ReadCounter
    from selu_zoo import datasets

    reads = ReadCounter(monkeypatch)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).round(3)
    text = "a;b;c;kind\n" + "".join(f"{r[0]};{r[1]};{r[2]};{'yn'[int(r[0] > 0)]}\n" for r in x)
    path = tmp_path / "data.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    data = datasets.open_dataset(f"csv:{path}", data_dir=str(tmp_path / "tfds"))
    assert data.info.label_names == ("n", "y") and data.info.feature_shape == (3,)
    assert sum(data.info.num_examples.values()) == 200
    assert reads.counts() == {"train": 0, "validation": 0, "test": 0}
    train, _ = data.take("train", 1000)
    np.testing.assert_allclose(data.info.mean, train.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(data.info.variance, train.astype(np.float64).var(0), rtol=1e-5)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(data.batches("train", 32, shuffle_seed=0), epochs=2, verbose=0,
                        shuffle=False)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]


def test_a_file_streamed_in_small_blocks_reads_as_the_file_read_whole(tmp_path, monkeypatch):
    text = "a,b,kind\n" + "".join(f"{i * 0.5},{-i},{'xyz'[i % 3]}\n" for i in range(300))
    (tmp_path / "whole").mkdir()
    expected = _by_line(_prepare(tmp_path / "whole", text))
    monkeypatch.setattr(tabular.csv_file, "WHOLE_FILE_BYTES", 0)  # open_csv, streamed,
    monkeypatch.setattr(tabular.csv_file, "BLOCK_BYTES", 256)  # about 20 rows a block.
    got = _by_line(_prepare(tmp_path, text))
    assert sorted(got) == sorted(expected) == list(range(300))
    for row, (split, features, label) in got.items():
        assert split == expected[row][0] and label == expected[row][2]
        np.testing.assert_array_equal(features, expected[row][1])
