"""Tests of selu_zoo.datasets: offline TFDS builders and tf.data pipelines.

Every test writes into its own temporary data_dir; the network is blocked wherever data
is prepared or a missing catalog dataset is requested, to prove nothing reaches out.
"""

import socket

import numpy as np
import pytest
from sklearn import datasets as sk_datasets
import tensorflow as tf
import tensorflow_datasets as tfds

from selu_zoo import datasets

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


def _split_numpy(builder, split):
    """All features of one stored split as a dict of numpy arrays."""
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))


def _epoch(dataset):
    """Concatenates one pass over a batched (features, label) dataset."""
    features, labels = zip(*dataset.as_numpy_iterator())
    return np.concatenate(features), np.concatenate(labels)


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
    data, info = datasets.make_datasets(
        "adding_problem/t100", 500, data_dir=str(tmp_path), splits=("train", "test"))
    assert info.feature_shape == (100, 2)
    assert info.num_examples == {"train": 4000, "validation": 1000, "test": 1000}
    features, targets = next(iter(data["train"]))
    assert features.shape == (500, 100, 2) and targets.shape == (500,)


def test_make_datasets_shapes_dtypes_and_batching(prepared_dir):
    data, info = datasets.make_datasets("digits", 100, data_dir=prepared_dir)
    assert set(data) == set(SPLITS)
    assert info.name == "digits" and info.task == "classification"
    assert info.num_classes == 10 and len(info.label_names) == 10
    assert info.feature_shape == (64,)
    assert info.num_examples == dict(zip(SPLITS, EXPECTED_SIZES["digits"]))
    sizes = [int(features.shape[0]) for features, _ in data["train"]]
    assert sizes == [100] * 10 + [79]
    features, labels = next(iter(data["test"]))
    assert features.dtype == tf.float32 and labels.dtype == tf.int64
    assert features.shape == (100, 64) and labels.shape == (100,)
    # Validation and test keep the stored order.
    for split in ("validation", "test"):
        expected_x, expected_y = datasets.load_arrays("digits", split,
                                                      data_dir=prepared_dir)
        got_x, got_y = _epoch(data[split])
        np.testing.assert_array_equal(got_x, expected_x)
        np.testing.assert_array_equal(got_y, expected_y)
    dropped, _ = datasets.make_datasets(
        "digits", 100, data_dir=prepared_dir, splits=("train",),
        drop_remainder_train=True, cache=False)
    assert [int(x.shape[0]) for x, _ in dropped["train"]] == [100] * 10


def test_regression_pipeline(prepared_dir):
    data, info = datasets.make_datasets(
        "adding_problem", 256, data_dir=prepared_dir, feature_shape=(100,))
    assert info.task == "regression" and info.num_classes is None
    assert info.label_names is None and info.feature_shape == (100,)
    features, targets = next(iter(data["validation"]))
    assert features.shape == (256, 100) and targets.dtype == tf.float32


def test_feature_shape_reshapes_rows_in_order(prepared_dir):
    flat, _ = datasets.load_arrays("digits", "train", data_dir=prepared_dir)
    image, _ = datasets.load_arrays("digits", "train", feature_shape=(8, 8, 1),
                                    data_dir=prepared_dir)
    rows, _ = datasets.load_arrays("digits", "train", feature_shape=(8, 8),
                                   data_dir=prepared_dir)
    assert flat.shape == (1079, 64) and image.shape == (1079, 8, 8, 1)
    # scikit-learn's 8x8 `images` are an independent reference of the pixel layout.
    builder = datasets.embedded_builder("digits", data_dir=prepared_dir, prepare=False)
    reference = sk_datasets.load_digits().images[_split_numpy(builder, "train")["index"]]
    reference = (reference / 16.0).astype(np.float32)
    np.testing.assert_array_equal(rows, reference)
    np.testing.assert_array_equal(image[..., 0], reference)
    np.testing.assert_array_equal(flat, reference.reshape(1079, 64))
    data, info = datasets.make_datasets("digits", 32, feature_shape=(8, 8, 1),
                                        data_dir=prepared_dir, splits=("test",))
    assert info.mean.shape == (8, 8, 1) and info.variance.shape == (8, 8, 1)
    assert next(iter(data["test"]))[0].shape == (32, 8, 8, 1)


@pytest.mark.parametrize("bad_shape", [(63,), (8, 8, 2), (8, 8, 0), (8.0, 8.0), 64])
def test_incompatible_feature_shape_is_rejected(bad_shape, prepared_dir):
    with pytest.raises(ValueError) as error:
        datasets.load_info("digits", feature_shape=bad_shape, data_dir=prepared_dir)
    assert repr(bad_shape) in str(error.value)
    assert "(64,)" in str(error.value)


def test_statistics_come_from_the_train_split_only(prepared_dir):
    info = datasets.load_info("breast_cancer", data_dir=prepared_dir)
    train, _ = datasets.load_arrays("breast_cancer", "train", data_dir=prepared_dir)
    np.testing.assert_allclose(info.mean, train.astype(np.float64).mean(axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(info.variance, train.astype(np.float64).var(axis=0),
                               rtol=1e-5)
    everything = np.concatenate([
        datasets.load_arrays("breast_cancer", split, data_dir=prepared_dir)[0]
        for split in SPLITS])
    assert not np.allclose(info.mean, everything.mean(axis=0), rtol=1e-4)
    assert not info.mean.flags.writeable


def test_train_shuffle_is_per_epoch_and_seed_reproducible(prepared_dir):
    def train_dataset(seed):
        data, _ = datasets.make_datasets("digits", 64, data_dir=prepared_dir,
                                         shuffle_seed=seed, splits=("train",))
        return data["train"]

    first, again, other = train_dataset(0), train_dataset(0), train_dataset(1)
    epoch1, epoch2 = _epoch(first), _epoch(first)
    np.testing.assert_array_equal(_epoch(again)[1], epoch1[1])
    np.testing.assert_array_equal(_epoch(again)[1], epoch2[1])
    assert not np.array_equal(epoch1[0], epoch2[0])
    assert not np.array_equal(_epoch(other)[0], epoch1[0])
    stored, _ = datasets.load_arrays("digits", "train", data_dir=prepared_dir)
    assert not np.array_equal(epoch1[0], stored)
    assert sorted(map(bytes, epoch1[0])) == sorted(map(bytes, stored))  # a permutation


@pytest.mark.parametrize("batch_size", [0, -4, 2.5, True, "32", None])
def test_invalid_batch_size_is_rejected(batch_size, tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        datasets.make_datasets("iris", batch_size, data_dir=str(tmp_path))


def test_unknown_names_and_splits_are_rejected(prepared_dir):
    with pytest.raises(ValueError) as error:
        datasets.load_info("no_such_dataset", data_dir=prepared_dir)
    for name in datasets.EMBEDDED_DATASETS:
        assert name in str(error.value)
    assert not isinstance(error.value, datasets.DatasetNotAvailableError)
    with pytest.raises(ValueError, match="no split 'holdout'"):
        datasets.load_arrays("iris", "holdout", data_dir=prepared_dir)
    with pytest.raises(ValueError, match="splits"):
        datasets.make_datasets("iris", 8, data_dir=prepared_dir, splits="train")
    with pytest.raises(ValueError, match="configs: t50, t100, t200, t400"):
        datasets.load_info("adding_problem/t7", data_dir=prepared_dir)


def test_missing_catalog_dataset_raises_a_clear_error(tmp_path, no_network):
    with pytest.raises(datasets.DatasetNotAvailableError) as error:
        datasets.make_datasets("mnist", 32, data_dir=str(tmp_path))
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "\n" not in message
    assert "'mnist'" in message and str(tmp_path) in message
    for name in datasets.EMBEDDED_DATASETS:
        assert name in message


def test_catalog_dataset_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        data, info = datasets.make_datasets("mnist", 4, data_dir=str(tmp_path))
        assert info.task == "classification" and info.num_classes == 10
        assert info.feature_shape == (28, 28, 1)
        for split in SPLITS:
            batches = list(data[split].as_numpy_iterator())
            assert [x.shape for x, _ in batches] == [(4, 28, 28, 1)] * 2 + [(2, 28, 28, 1)]
            features, labels = batches[0]
            assert features.dtype == np.float32 and labels.dtype == np.int64
            assert 0.0 <= features.min() and features.max() <= 1.0
            assert features.max() > 0.0 and labels.max() < 10


class _SyntheticMnist(tfds.image_classification.MNIST, skip_registration=True):
    """Writes files in MNIST's exact format from synthetic images (no download)."""

    name = "mnist"

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._synthetic(50, 0), "test": self._synthetic(20, 1)}

    def _synthetic(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            image = rng.integers(0, 256, size=(28, 28, 1), dtype=np.uint8)
            yield i, {"image": image, "label": i % 10}


def test_prepared_catalog_dataset_is_read_without_download(tmp_path, no_network):
    _SyntheticMnist(data_dir=str(tmp_path)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    data, info = datasets.make_datasets("mnist", 8, data_dir=str(tmp_path))
    # mnist has no validation split: the last 10 % of train are held out.
    assert info.num_examples == {"train": 45, "validation": 5, "test": 20}
    raw = tfds.as_numpy(tfds.load("mnist", split="train", data_dir=str(tmp_path),
                                  download=False, batch_size=-1, as_supervised=True))
    train_x, train_y = datasets.load_arrays("mnist", "train", data_dir=str(tmp_path))
    valid_x, _ = datasets.load_arrays("mnist", "validation", data_dir=str(tmp_path))
    np.testing.assert_array_equal(np.concatenate([train_x, valid_x]),
                                  raw[0].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(train_y, raw[1][:45])
    np.testing.assert_allclose(info.mean, train_x.mean(axis=0), rtol=1e-5)
    assert [x.shape[0] for x, _ in data["validation"]] == [5]
