"""Tests of selu_zoo.datasets: the embedded builders and `open_dataset`'s read plan.

Every test writes into its own temporary data_dir; the network is blocked wherever data is
prepared, to prove that nothing reaches out. Reads are counted where `Source.read_batches`,
the one place that reads a split's files, hands examples on (`ReadCounter`). Catalog
datasets, downloads and bounded reads of huge data are in test_catalog.py.
"""

import importlib
import os
import tempfile
import socket
import types

import numpy as np
import pytest
from sklearn import datasets as sk_datasets
import tensorflow as tf
import tensorflow_datasets as tfds

import training
from configs import validation
from selu_zoo import datasets, storage
from selu_zoo.datasets import pipeline, sources, statistics, tabular

from _reads import ReadCounter

# name -> (independent scikit-learn reference loader, scale of the features)
SKLEARN_REFERENCE = {
    "digits": (sk_datasets.load_digits, 16.0),
    "breast_cancer": (sk_datasets.load_breast_cancer, 1.0),
    "wine": (sk_datasets.load_wine, 1.0),
    "iris": (sk_datasets.load_iris, 1.0),
}
# name -> (train, validation, test); the totals are the UCI dataset sizes.
EXPECTED_SIZES = {
    "digits": (1079, 359, 359),
    "breast_cancer": (341, 114, 114),
    "wine": (106, 36, 36),
    "iris": (90, 30, 30),
}
EXPECTED_TOTALS = {"digits": 1797, "breast_cancer": 569, "wine": 178, "iris": 150}
SPLITS = ("train", "validation", "test")


def _block_network(monkeypatch):
    """Makes every Python socket connection attempt raise."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def no_network(monkeypatch):
    _block_network(monkeypatch)


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
    """A data_dir with every embedded dataset, prepared with the network blocked."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        _block_network(monkeypatch)
        for name in datasets.EMBEDDED_DATASETS:
            datasets.embedded_builder(name, data_dir=data_dir)
    return data_dir


@pytest.fixture
def reads(monkeypatch):
    return ReadCounter(monkeypatch)


def _split_numpy(builder, split):
    """All features of one stored split as a dict of numpy arrays, read by TFDS itself."""
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))


def _epoch(dataset):
    """Concatenates one pass over a batched (features, label) dataset."""
    features, labels = zip(*dataset.as_numpy_iterator())
    return np.concatenate(features), np.concatenate(labels)


def _two_pass(values):
    """Float64 mean and population variance, the textbook two-pass way."""
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    mean = values.mean(axis=0)
    return mean, np.square(values - mean).mean(axis=0)


# --- the embedded builders -----------------------------------------------------------------


def test_network_guard_refuses_connections(no_network):
    with pytest.raises(OSError, match="offline test"):
        socket.socket().connect(("127.0.0.1", 9))


def test_embedded_names_do_not_clash_with_the_tfds_catalog():
    assert datasets.EMBEDDED_DATASETS == (
        "digits", "breast_cancer", "wine", "iris", "adding_problem")
    catalog = set(tfds.list_builders(with_community_datasets=False))
    for builder_cls in datasets.EMBEDDED_BUILDERS.values():
        assert builder_cls.name.startswith("selu_zoo_")
        assert builder_cls.name not in catalog
    # TFDS's own iris stays registered and is not ours.
    assert tfds.builder_cls("iris") is not datasets.SeluZooIris


@pytest.mark.parametrize("name", list(SKLEARN_REFERENCE))
def test_uci_splits_are_complete_disjoint_and_stratified(name, prepared_dir):
    builder = datasets.embedded_builder(name, data_dir=prepared_dir, prepare=False)
    assert builder.is_prepared()
    total = EXPECTED_TOTALS[name]
    labels_all = SKLEARN_REFERENCE[name][0]().target
    proportions = np.bincount(labels_all) / total
    indices = []
    for split, expected in zip(SPLITS, EXPECTED_SIZES[name]):
        arrays = _split_numpy(builder, split)
        assert builder.info.splits[split].num_examples == expected
        assert len(arrays["index"]) == expected
        counts = np.bincount(arrays["label"], minlength=len(proportions))
        np.testing.assert_array_less(np.abs(counts - expected * proportions), 1.0 + 1e-9)
        indices.append(arrays["index"])
    assert sum(EXPECTED_SIZES[name]) == total
    merged = np.concatenate(indices)
    assert len(np.unique(merged)) == total  # disjoint
    np.testing.assert_array_equal(np.sort(merged), np.arange(total))  # complete


@pytest.mark.parametrize("name", list(SKLEARN_REFERENCE))
def test_uci_values_match_sklearn(name, prepared_dir):
    loader, scale = SKLEARN_REFERENCE[name]
    reference = loader()
    builder = datasets.embedded_builder(name, data_dir=prepared_dir, prepare=False)
    assert builder.info.features["label"].names == [str(n) for n in reference.target_names]
    for split in SPLITS:
        arrays = _split_numpy(builder, split)
        rows = arrays["index"]
        assert arrays["features"].dtype == np.float32
        np.testing.assert_array_equal(
            arrays["features"], (reference.data[rows] / scale).astype(np.float32))
        np.testing.assert_array_equal(arrays["label"], reference.target[rows])
    if name == "digits":
        features = _split_numpy(builder, "train")["features"]
        assert features.min() == 0.0 and features.max() == 1.0


@pytest.mark.parametrize("name", datasets.EMBEDDED_DATASETS)
def test_embedded_prepares_offline_and_deterministically(
        name, tmp_path, no_network, prepared_dir):
    builder = datasets.embedded_builder(name, data_dir=str(tmp_path))
    assert builder.is_prepared()
    assert str(builder.data_dir).startswith(str(tmp_path))
    first = datasets.embedded_builder(name, data_dir=prepared_dir, prepare=False)
    for split in SPLITS:
        again, before = _split_numpy(builder, split), _split_numpy(first, split)
        assert again.keys() == before.keys()
        for key in before:
            np.testing.assert_array_equal(again[key], before[key])


def test_concurrent_preparation_reuses_the_winner(tmp_path, monkeypatch, no_network):
    original = datasets.SeluZooIris._split_generators
    calls = []

    def racing_split_generators(self, dl_manager):
        if not calls:  # Another "process" completes the same folder meanwhile.
            calls.append(True)
            datasets.SeluZooIris(data_dir=str(tmp_path)).download_and_prepare()
        return original(self, dl_manager)

    monkeypatch.setattr(datasets.SeluZooIris, "_split_generators",
                        racing_split_generators)
    builder = datasets.embedded_builder("iris", data_dir=str(tmp_path))
    assert calls and builder.is_prepared()
    assert builder.info.splits["train"].num_examples == 90


def test_adding_problem_examples(prepared_dir):
    builder = datasets.embedded_builder("adding_problem", data_dir=prepared_dir,
                                        prepare=False)
    firsts = []
    for split, expected in datasets.ADDING_PROBLEM_SIZES.items():
        arrays = _split_numpy(builder, split)
        sequences, targets = arrays["features"], arrays["target"]
        assert sequences.shape == (expected, 50, 2)
        assert sequences.dtype == np.float32 and targets.dtype == np.float32
        values, markers = sequences[..., 0], sequences[..., 1]
        assert values.min() >= 0.0 and values.max() < 1.0
        assert set(np.unique(markers)) == {0.0, 1.0}
        np.testing.assert_array_equal(markers[:, :25].sum(axis=1), 1.0)
        np.testing.assert_array_equal(markers[:, 25:].sum(axis=1), 1.0)
        np.testing.assert_array_equal(targets, (values * markers).sum(axis=1))
        firsts.append(values[0])
    assert not np.array_equal(firsts[0], firsts[2])  # splits are drawn independently
    assert (datasets.ADDING_PROBLEM_SIZES
            == {"train": 4000, "validation": 1000, "test": 1000})


def test_adding_problem_arrays_are_seeded():
    one = datasets.adding_problem_arrays(64, 10, np.random.default_rng(3))
    two = datasets.adding_problem_arrays(64, 10, np.random.default_rng(3))
    other = datasets.adding_problem_arrays(64, 10, np.random.default_rng(4))
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert not np.array_equal(one[0], other[0])
    with pytest.raises(ValueError):
        datasets.adding_problem_arrays(4, 1, np.random.default_rng(0))


def test_adding_problem_longer_config(tmp_path, no_network):
    data = datasets.open_dataset("adding_problem/t100", data_dir=str(tmp_path))
    info = data.info
    assert info.task == "regression" and info.num_classes is None
    assert info.label_names is None and info.feature_shape == (100, 2)
    assert info.num_examples == {"train": 4000, "validation": 1000, "test": 1000}
    features, targets = next(iter(data.batches("train", 500)))
    assert features.shape == (500, 100, 2) and targets.shape == (500,)
    assert targets.dtype == tf.float32


# --- Source.read_batches: batched parsing gives what TFDS gives ----------------------------


def _assert_same_examples(source, split):
    stored = source.builder.as_dataset(split=source.split_specs[split], as_supervised=True,
                                       shuffle_files=False)
    expected = _epoch((stored.unbatch() if source.blocks else stored).batch(512))
    got = _epoch(source.read_batches(split))
    assert len(got[0]) == len(expected[0]) == source.num_examples(split)
    assert int(pipeline.Dataset(source).examples(split).cardinality()) == len(expected[0])
    sizes = [len(labels) for _, labels in source.read_batches(split).as_numpy_iterator()]
    assert max(sizes) <= sources.PARSE_BATCH and sum(sizes) == len(expected[0])
    for value, reference in zip(got, expected):
        assert value.dtype == reference.dtype and value.shape == reference.shape
        np.testing.assert_array_equal(value, reference)


@pytest.mark.parametrize("name", datasets.EMBEDDED_DATASETS)
def test_read_matches_tfds_on_embedded_data(name, prepared_dir):
    source = sources.open_source(name, data_dir=prepared_dir)
    assert sources._parser(source.builder) is not None  # the batched path is taken
    for split in SPLITS:
        _assert_same_examples(source, split)


@pytest.mark.parametrize("regression", [False, True])
def test_read_matches_tfds_on_a_csv_of_several_shards(regression, tmp_path, monkeypatch):
    """Shuffled shards, read by TFDS interleaved 16 at a time: the same order here."""
    monkeypatch.setattr(tabular.preparation, "_MEMORY_BYTES", 0)  # buckets on disk,
    monkeypatch.setattr(tabular.preparation, "_BUCKET_BYTES", 600)  # a shard per bucket
    label = (lambda i: f"{i * 0.37:.2f}") if regression else (lambda i: str(i % 3))
    path = tmp_path / "data.csv"
    path.write_text("a,b,c,y\n" + "".join(f"{i},{i % 7},{i * 0.5},{label(i)}\n"
                                          for i in range(300)))
    source = sources.open_source(f"csv:{path}", data_dir=str(tmp_path / "tfds"))
    assert source.builder.info.splits["train"].num_shards > 1
    assert source.task == ("regression" if regression else "classification")
    for split in SPLITS:
        _assert_same_examples(source, split)


@pytest.mark.parametrize("kwargs", [{}, {"shuffle_seed": 0, "epochs": range(2)},
                                    {"shuffle_seed": 0, "repeat": True}])
def test_batches_run_without_the_autotuner(prepared_dir, kwargs):
    """Deleting an autotuned iterator (Keras does at the end of fit) could sit idle for
    seconds; every pipeline `batches` returns has the autotuner off and still prefetches."""
    data = datasets.open_dataset("digits", data_dir=prepared_dir)
    batches = data.batches("train", 32, **kwargs)
    assert batches.options().autotune.enabled is False
    features, labels = next(iter(batches))
    assert features.shape == (32, 64) and labels.shape == (32,)


def test_opening_a_dataset_not_prepared_yet_leaves_no_temporary_folder(tmp_path):
    """TFDS makes an empty temporary folder for each builder of an unprepared dataset and
    does not delete it; opening a fresh embedded dataset leaves the temp folder as it was."""
    def entries():  # autograph's generated sources are deleted when the process exits
        return {n for n in os.listdir(tempfile.gettempdir())
                if not n.startswith("__autograph_generated_file")}

    before = entries()
    datasets.open_dataset("wine", data_dir=str(tmp_path / "fresh"))
    assert entries() - before == set()


# --- open_dataset: info ---------------------------------------------------------------------


def test_info_comes_from_the_builder(prepared_dir, reads):
    datasets.open_dataset("digits", data_dir=prepared_dir)  # statistics, if not yet there
    reads.reset()
    data = datasets.open_dataset("digits", data_dir=prepared_dir)
    info = data.info
    assert info.name == "digits" and info.task == "classification"
    assert info.num_classes == 10 and info.label_names == tuple(str(i) for i in range(10))
    assert info.feature_shape == (64,) and info.feature_names is None
    assert info.num_examples == dict(zip(SPLITS, EXPECTED_SIZES["digits"]))
    assert (info.label_mean, info.label_variance) == (0.0, 1.0)
    assert not info.mean.flags.writeable and not info.variance.flags.writeable
    assert reads.counts() == {"train": 0, "validation": 0, "test": 0}  # all remembered
    wine = datasets.open_dataset("wine", data_dir=prepared_dir).info
    assert wine.label_names == ("class_0", "class_1", "class_2")


def test_feature_shape_reshapes_rows_in_order(prepared_dir):
    flat, _ = datasets.open_dataset("digits", data_dir=prepared_dir).take("train", 2000)
    image_data = datasets.open_dataset("digits", data_dir=prepared_dir,
                                       feature_shape=(8, 8, 1))
    image, _ = image_data.take("train", 2000)
    rows, _ = datasets.open_dataset("digits", data_dir=prepared_dir,
                                    feature_shape=[8, 8]).take("train", 2000)
    assert flat.shape == (1079, 64) and image.shape == (1079, 8, 8, 1)
    # scikit-learn's 8x8 `images` are an independent reference of the pixel layout.
    builder = datasets.embedded_builder("digits", data_dir=prepared_dir, prepare=False)
    reference = sk_datasets.load_digits().images[_split_numpy(builder, "train")["index"]]
    reference = (reference / 16.0).astype(np.float32)
    np.testing.assert_array_equal(rows, reference)
    np.testing.assert_array_equal(image[..., 0], reference)
    np.testing.assert_array_equal(flat, reference.reshape(1079, 64))
    info = image_data.info
    assert info.feature_shape == (8, 8, 1)
    assert info.mean.shape == (8, 8, 1) and info.variance.shape == (8, 8, 1)
    assert next(iter(image_data.batches("test", 32)))[0].shape == (32, 8, 8, 1)


@pytest.mark.parametrize("bad_shape", [(63,), (8, 8, 2), (8, 8, 0), (8.0, 8.0), 64,
                                       (True, 64), (-8, -8), ()])
def test_feature_shape_that_does_not_fit_names_the_config_field(bad_shape, prepared_dir):
    with pytest.raises(ValueError) as error:
        datasets.open_dataset("digits", data_dir=prepared_dir, feature_shape=bad_shape)
    message = str(error.value)
    assert message.startswith("config.feature_shape") and repr(bad_shape) in message
    assert "'digits'" in message and "64 values" in message and "\n" not in message


def test_unknown_names_and_splits_are_rejected(prepared_dir):
    with pytest.raises(ValueError) as error:
        datasets.open_dataset("no_such_dataset", data_dir=prepared_dir)
    for name in datasets.EMBEDDED_DATASETS:
        assert name in str(error.value)
    assert not isinstance(error.value, datasets.DatasetNotAvailableError)
    for bad in ("", "  ", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            datasets.open_dataset(bad, data_dir=prepared_dir)
    data = datasets.open_dataset("iris", data_dir=prepared_dir)
    for call in (lambda: data.examples("holdout"), lambda: data.batches("holdout", 8),
                 lambda: data.take("holdout", 8)):
        with pytest.raises(ValueError, match="split must be one of"):
            call()
    with pytest.raises(ValueError, match="configs: t50, t100, t200, t400"):
        datasets.open_dataset("adding_problem/t7", data_dir=prepared_dir)


# --- statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, feature_shape", [("breast_cancer", None), ("digits", None),
                                                 ("adding_problem", (100,))])
def test_statistics_equal_a_two_pass_float64_computation(name, feature_shape, tmp_path):
    """Every feature's mean and variance, against NumPy on TFDS's own read of train."""
    data = datasets.open_dataset(name, data_dir=str(tmp_path), feature_shape=feature_shape)
    info, builder = data.info, data.source.builder
    keys = builder.info.supervised_keys
    train = _split_numpy(builder, "train")
    mean, variance = _two_pass(train[keys[0]])
    np.testing.assert_allclose(info.mean.reshape(-1), mean.astype(np.float32), rtol=2e-7,
                               atol=1e-30)
    np.testing.assert_allclose(info.variance.reshape(-1), variance.astype(np.float32),
                               rtol=2e-7, atol=1e-30)
    np.testing.assert_array_equal(info.variance.reshape(-1) == 0, variance == 0)
    moments = statistics.compute_moments(data.examples("train"))  # the float64 result
    assert moments.count == info.num_examples["train"]
    np.testing.assert_allclose(moments.mean, mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(moments.variance, variance, rtol=1e-11, atol=1e-15)
    if info.task == "regression":
        label_mean, label_variance = _two_pass(train[keys[1]])
        assert info.label_mean == pytest.approx(label_mean[0], rel=1e-12)
        assert info.label_variance == pytest.approx(label_variance[0], rel=1e-11)
    # Train only: the other splits have other statistics.
    everything = np.concatenate([_split_numpy(builder, split)[keys[0]] for split in SPLITS])
    assert not np.allclose(info.mean.reshape(-1), _two_pass(everything)[0], rtol=1e-4)


def test_streaming_moments_are_stable_far_from_zero():
    """Chan's update, batch by batch, against two passes; E[x^2] - E[x]^2 would fail."""
    rng = np.random.default_rng(0)
    scales = np.array([1e-3, 1.0, 1e3], np.float32)
    x = (1e4 + rng.normal(size=(10_000, 3)) * scales).astype(np.float32)  # 3 batches
    labels = rng.normal(size=10_000).astype(np.float32) + 1e3
    moments = statistics.compute_moments(tf.data.Dataset.from_tensor_slices((x, labels)))
    mean, variance = _two_pass(x)
    assert moments.count == 10_000
    np.testing.assert_allclose(moments.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(moments.variance, variance, rtol=1e-9)
    assert moments.label_variance == pytest.approx(_two_pass(labels)[1][0], rel=1e-9)
    naive = (np.square(x.astype(np.float64)).mean(axis=0) - np.square(mean))
    assert not np.allclose(naive, variance, rtol=1e-9)  # the check above has teeth
    with pytest.raises(ValueError, match="no examples"):
        statistics.compute_moments(tf.data.Dataset.from_tensor_slices((x[:0], labels[:0])))


def test_statistics_are_remembered_beside_the_prepared_data(tmp_path, reads):
    first = datasets.open_dataset("breast_cancer", data_dir=str(tmp_path))
    assert reads.counts() == {"train": 341, "validation": 0, "test": 0}
    folder = str(first.source.builder.data_dir)
    (remembered,) = [f for f in os.listdir(folder) if f.startswith("selu_zoo-moments-")]
    reads.reset()
    second = datasets.open_dataset("breast_cancer", data_dir=str(tmp_path))
    assert reads.counts() == {"train": 0, "validation": 0, "test": 0}
    np.testing.assert_array_equal(second.info.mean, first.info.mean)
    np.testing.assert_array_equal(second.info.variance, first.info.variance)
    # A damaged file is computed again (one pass) and rewritten.
    with open(os.path.join(folder, remembered), "w") as file:
        file.write('{"version": 1, "count": ')
    third = datasets.open_dataset("breast_cancer", data_dir=str(tmp_path))
    assert reads.counts()["train"] == 341
    np.testing.assert_array_equal(third.info.mean, first.info.mean)
    assert storage.read_json(os.path.join(folder, remembered), fix="")["count"] == 341


# --- batches, shuffling, take, the memory cache ---------------------------------------------


def test_batches_shapes_dtypes_and_order(prepared_dir):
    data = datasets.open_dataset("digits", data_dir=prepared_dir)
    sizes = [int(features.shape[0]) for features, _ in data.batches("train", 100)]
    assert sizes == [100] * 10 + [79]
    dropped = data.batches("train", 100, drop_remainder=True)
    assert [int(x.shape[0]) for x, _ in dropped] == [100] * 10
    assert dropped.element_spec[0].shape.as_list() == [100, 64]
    features, labels = next(iter(data.batches("test", 100)))
    assert features.dtype == tf.float32 and labels.dtype == tf.int64
    assert features.shape == (100, 64) and labels.shape == (100,)
    # Without a seed, the stored order (TFDS's read of the files).
    builder = data.source.builder
    for split in SPLITS:
        stored = _split_numpy(builder, split)
        got_x, got_y = _epoch(data.batches(split, 64))
        np.testing.assert_array_equal(got_x, stored["features"])
        np.testing.assert_array_equal(got_y, stored["label"])
    # repeat: a fixed number of steps per epoch, passes run into each other; map_fn: a
    # task's training pair.
    repeated = data.batches("validation", 100, repeat=True, map_fn=lambda x, y: (x, x))
    steps = list(repeated.take(8).as_numpy_iterator())
    assert len(steps) == 8 and all(np.array_equal(x, target) for x, target in steps)
    rows = _split_numpy(builder, "validation")["features"]  # 359 rows
    np.testing.assert_array_equal(steps[3][0], np.concatenate([rows[300:], rows[:41]]))
    # map_fn is called once per batch, with the whole batch.
    sizes = data.batches("validation", 100, map_fn=lambda x, y: (x, tf.shape(y)[0]))
    assert [int(size) for _, size in sizes] == [100, 100, 100, 59]


def test_each_epochs_order_depends_on_the_seed_and_the_epoch_alone(prepared_dir):
    """What a resumed run needs: epoch e of the passes ``epochs=range(e, ...)`` is epoch e of
    the passes from epoch 0 on."""
    data = datasets.open_dataset("digits", data_dir=prepared_dir)
    steps = data.steps_per_epoch("train", 64)
    assert steps == 17  # ceil(1079 / 64): each epoch ends with its own partial batch

    def epochs(seed, first_epoch=0, count=2):
        stream = data.batches("train", 64, shuffle_seed=seed,
                              epochs=range(first_epoch, first_epoch + count))
        batches = [x for x, _ in stream.as_numpy_iterator()]
        assert len(batches) == steps * count
        return [np.concatenate(batches[i * steps:(i + 1) * steps]) for i in range(count)]

    epoch0, epoch1 = epochs(0)
    assert len(epoch0) == len(epoch1) == 1079 and not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(epochs(0, first_epoch=1, count=1)[0], epoch1)
    np.testing.assert_array_equal(epochs(0, count=1)[0], epoch0)
    assert not np.array_equal(epochs(1, count=1)[0], epoch0)
    stored, _ = data.take("train", 2000)
    assert not np.array_equal(epoch0, stored)
    assert sorted(map(bytes, epoch0)) == sorted(map(bytes, stored))  # a permutation


def test_take_is_the_first_rows_and_at_most_the_split(prepared_dir):
    data = datasets.open_dataset("wine", data_dir=prepared_dir)
    stored = _split_numpy(data.source.builder, "test")
    features, labels = data.take("test", 10)
    assert features.shape == (10, 13) and labels.shape == (10,)
    np.testing.assert_array_equal(features, stored["features"][:10])
    np.testing.assert_array_equal(labels, stored["label"][:10])
    everything, _ = data.take("test", 10_000)
    assert len(everything) == 36


def test_small_splits_are_read_from_disk_once_large_ones_stream(prepared_dir, reads,
                                                                 monkeypatch):
    data = datasets.open_dataset("digits", data_dir=prepared_dir)
    assert all(data.cached(split) for split in SPLITS)
    data.take("validation", 16)  # fills the validation cache: one read
    for _ in range(3):
        _epoch(data.batches("train", 64, shuffle_seed=0))
        _epoch(data.batches("validation", 64))
        data.take("validation", 256)
    assert reads.counts() == {"train": 1079, "validation": 359, "test": 0}
    # A split over CACHE_LIMIT_BYTES (0 here) streams: each pass reads it again.
    monkeypatch.setattr(pipeline, "CACHE_LIMIT_BYTES", 1079 * (4 * 64 + 8) - 1)
    reads.reset()
    streamed = datasets.open_dataset("digits", data_dir=prepared_dir)
    assert not streamed.cached("train") and streamed.cached("test")
    for _ in range(3):
        _epoch(streamed.batches("train", 64, shuffle_seed=0))
    assert reads.counts()["train"] == 3 * 1079


# --- each split read once per run, end to end -------------------------------------------------


def test_a_run_reads_each_split_once(tmp_path, reads, monkeypatch):
    """train_and_evaluate: statistics, 3 epochs, validation, probes, test metrics, pictures
    and the export's calibration and verification rows read each split exactly once, in a
    fresh data_dir and again once the statistics are remembered.

    The export itself is replaced by a recorder: its rows, not its files, are what this is
    about (tests/test_train.py exports for real).
    """
    config = importlib.import_module("configs.snn").get_config()
    config.dataset, config.epochs, config.width, config.depth = "iris", 3, 8, 1
    config.jit_compile = False
    validation.validate(config, "snn")
    data_dir = str(tmp_path / "tfds")
    result = training.train_and_evaluate(config, str(tmp_path / "first"), data_dir=data_dir)
    assert len(result["metrics"]["history"]["loss"]) == 3
    assert reads.counts() == {"train": 90, "validation": 30, "test": 30}

    recorded = {}

    def fake_export_all(model, export_dir, name, *, representative_data, validation_data,
                        **kwargs):
        recorded.update(calibration=representative_data, verification=validation_data)
        return types.SimpleNamespace(files={}, version=1)

    monkeypatch.setattr(training, "export_all", fake_export_all)
    reads.reset()
    training.train_and_evaluate(
        config, str(tmp_path / "second"), data_dir=data_dir,
        export_options=training.ExportOptions(str(tmp_path / "exports"), "snn"))
    assert reads.counts() == {"train": 90, "validation": 30, "test": 30}
    assert recorded["calibration"][0].shape == (90, 4)  # min(CALIBRATION_EXAMPLES, 90)
    stored = datasets.open_dataset("iris", data_dir=data_dir)
    np.testing.assert_array_equal(recorded["verification"][0], stored.take("test", 100)[0])
    np.testing.assert_array_equal(recorded["verification"][1], stored.take("test", 100)[1])


# --- damaged prepared data ------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated_info", "empty_info", "missing_records"])
def test_damaged_prepared_data_fails_in_one_line_before_training(damage, tmp_path,
                                                                  no_network):
    data_dir = str(tmp_path / "tfds")
    folder = str(datasets.open_dataset("iris", data_dir=data_dir).source.builder.data_dir)
    if damage == "missing_records":
        (victim,) = [f for f in os.listdir(folder) if "-test.tfrecord" in f]
        os.remove(os.path.join(folder, victim))
    else:
        with open(os.path.join(folder, "dataset_info.json"), "w") as file:
            file.write('{"name": "selu_zoo_iris", "splits": [' if damage == "truncated_info"
                       else "")
    config = importlib.import_module("configs.snn").get_config()
    config.dataset = "iris"
    with pytest.raises(storage.CorruptFileError) as error:
        training.train_and_evaluate(config, str(tmp_path / "work"), data_dir=data_dir)
    message = str(error.value)
    assert "\n" not in message and "'iris'" in message
    if damage == "missing_records":
        assert os.path.join(folder, victim) in message and f"delete {folder}" in message
    else:
        assert "dataset_info.json" in message and os.path.dirname(folder) in message
        assert "delete that folder" in message
    assert not os.path.exists(os.path.join(tmp_path, "work", "checkpoints"))
