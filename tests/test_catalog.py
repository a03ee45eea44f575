"""TFDS catalog datasets: download on request, mock data at full size, bounded reads.

No catalog data can reach this machine (there is no network beyond package registries),
so catalog datasets are faked with ``tfds.testing.mock_data``. Its default generator makes
about 2,000 random examples/s here (35 s for one pass over MNIST's train split), and it
ignores split slicing (``train[:90%]`` yields every example). `mock_catalog` gives it an
``as_dataset_fn`` that draws the examples block by block with stateless random ops (so
the same split always yields the same examples), honours slicing and reports its
cardinality: MNIST at full size (60,000 train and 10,000 test examples) in about a
second per pass. ``mock_data`` patches ``DatasetBuilder.__init__`` and friends, so it is
entered only around catalog work.
"""

import contextlib
import importlib
import os
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import splits as tfds_splits

import training
from configs import validation
from models import registry
from selu_zoo import datasets
from selu_zoo.datasets import sources, statistics

from _reads import ReadCounter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLITS = datasets.SPLITS
FULL_SIZES = {"train": 60_000, "test": 10_000}  # MNIST's, Fashion-MNIST's, and about CIFAR-10's
# mock data gives no split info: validation is the last 10 % of train, counts are the
# pipelines' cardinality.
FULL_COUNTS = {"train": 54_000, "validation": 6_000, "test": 10_000}
_BLOCK = 1024

# Tiny but complete versions of each zoo model.
TINY_FIELDS = {
    "snn": {"width": 16, "depth": 2},
    "snn_vae": {"width": 16, "depth": 1, "latent_dim": 2},
    "snn_cnn": {"filters": (4, 8)},
    "snn_rnn": {"units": 8},
}


def _fake_examples(features, start, stop, seed):
    """Examples ``start`` to ``stop`` of a fake split, drawn block by block."""
    infos = features.get_tensor_info()

    def block(first):
        index = tf.range(first, tf.minimum(first + _BLOCK, stop))
        example = {}
        for k, name in enumerate(sorted(infos)):
            feature, info = features[name], infos[name]
            if isinstance(feature, tfds.features.ClassLabel):
                example[name] = tf.cast(index % feature.num_classes, info.dtype)
            elif info.dtype == tf.string:
                example[name] = tf.strings.as_string(index)
            else:
                values = tf.random.stateless_uniform(
                    tf.concat([tf.shape(index), info.shape], 0),
                    seed=tf.stack([first, tf.constant(16 * seed + k, tf.int64)]),
                    minval=0, maxval=256, dtype=tf.int32)
                example[name] = tf.cast(values, info.dtype)
        return example

    examples = tf.data.Dataset.range(start, stop, _BLOCK).map(block).unbatch()
    return examples.apply(tf.data.experimental.assert_cardinality(stop - start))


def _fake_split_reader(sizes):
    """An ``as_dataset_fn`` for mock_data: splits of ``sizes`` examples, sliced as asked."""
    infos = {name: tfds_splits.SplitInfo(name=name, shard_lengths=[n], num_bytes=0,
                                         filename_template=None)
             for name, n in sizes.items()}

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        del decoders, read_config, shuffle_files
        (absolute,) = tfds.core.ReadInstruction.from_spec(str(split)).to_absolute(infos)
        total = sizes[absolute.splitname]
        start = absolute.from_ or 0
        stop = total if absolute.to is None else absolute.to
        return _fake_examples(self.info.features, start, stop,
                              seed=sorted(sizes).index(absolute.splitname))

    return as_dataset


@contextlib.contextmanager
def mock_catalog(data_dir, sizes=None):
    """Catalog datasets as fast mock data, with ``data_dir`` as the mocked data folder."""
    sizes = sizes or FULL_SIZES
    with tfds.testing.mock_data(data_dir=str(data_dir),
                                as_dataset_fn=_fake_split_reader(sizes)), \
            mock.patch.object(sources, "_check_download_hosts", lambda name, builder: None):
        # `_check_download_hosts` is our own network probe, run before a download:
        # mock_data replaces the download (a no-op) but not the probe, which would fail
        # here for want of a network.
        yield


def _prepared_folder(data_dir, name):
    """Creates the folder a real download leaves (so the statistics can be remembered)."""
    with mock_catalog(data_dir):
        folder = str(tfds.builder(name, data_dir=str(data_dir)).data_dir)
    os.makedirs(folder, exist_ok=True)
    return folder


def tiny_config(model, dataset, feature_shape=None):
    config = importlib.import_module(f"configs.{model}").get_config()
    config.dataset = dataset
    config.feature_shape = feature_shape
    config.epochs, config.steps_per_epoch, config.batch_size = 1, 2, 500
    config.jit_compile = False
    for field, value in TINY_FIELDS[model].items():
        config[field] = value
    validation.validate(config, model)
    return config


# --- catalog datasets on mock data at full size ---------------------------------------------

# dataset -> (stored shape, classes, the model trained end to end with its feature shape,
# the other models that fit, each with its feature shape: built, stepped once and called).
# Fashion-MNIST has MNIST's shape, so the models that fit MNIST fit it too: one end-to-end
# run shows the dataset works. The cheapest models run end to end (CIFAR-10's VAE takes
# 30 s here for its test ELBO, its RNN 18 s).
CATALOG_CASES = {
    "mnist": ((28, 28, 1), 10, ("snn_cnn", (28, 28, 1)),
              (("snn", None), ("snn_vae", None), ("snn_rnn", (28, 28)))),
    "fashion_mnist": ((28, 28, 1), 10, ("snn", None), ()),
    "cifar10": ((32, 32, 3), 10, ("snn", None),
                (("snn_vae", None), ("snn_cnn", (32, 32, 3)), ("snn_rnn", (32, 96)))),
}


@pytest.mark.parametrize("name", list(CATALOG_CASES))
def test_catalog_dataset_on_full_size_mock_data(name, tmp_path):
    shape, classes, (e2e_model, e2e_shape), others = CATALOG_CASES[name]
    data_dir = tmp_path / "tfds"
    folder = _prepared_folder(data_dir, name)
    with mock_catalog(data_dir):
        data = datasets.open_dataset(name, data_dir=str(data_dir))
        info = data.info
        assert info.num_examples == FULL_COUNTS
        assert info.feature_shape == shape and info.task == "classification"
        assert info.num_classes == classes and len(info.label_names) == classes
        # Uniform random bytes scaled to [0, 1]: every value's mean is 0.5 and its variance
        # (256**2 - 1) / 12 / 255**2; 54,000 examples put each within 8 sigma of 0.01.
        np.testing.assert_allclose(info.mean, 0.5, atol=0.01)
        np.testing.assert_allclose(info.variance, (256**2 - 1) / 12 / 255**2, rtol=0.06)
        assert any(f.startswith("selu_zoo-moments-") for f in os.listdir(folder))
        x, y = data.take("train", 32)
        assert x.dtype == np.float32 and x.shape == (32, *shape) and 0 <= x.min() < x.max() <= 1
        np.testing.assert_array_equal(y, np.arange(32) % classes)
        for model_name, feature_shape in others:  # opens, builds, takes a train step
            config = tiny_config(model_name, name, feature_shape)
            opened = training.open_data(config, str(data_dir))
            model = registry.build_model(config, opened.info)
            model.compile(optimizer=training.make_optimizer(config), jit_compile=False)
            batch = model.training_pair(tf.reshape(x, (32, *opened.info.feature_shape)), y)
            assert np.isfinite(model.train_on_batch(*batch, return_dict=True)["loss"])
        config = tiny_config(e2e_model, name, e2e_shape)
        result = training.train_and_evaluate(config, str(tmp_path / "work"),
                                             data_dir=str(data_dir))
    metrics = result["metrics"]
    assert metrics["dataset"] == name and metrics["model"] == e2e_model
    assert metrics["test"] and all(np.isfinite(v) for v in metrics["test"].values())
    assert os.path.isfile(result["artifacts"]["best_checkpoint"])


# --- bounded reads on a dataset far too large to read ------------------------------------------

HUGE_SIZES = {"train": 10**9, "test": 10**9}  # a full pass would take days here


def test_bounded_reads_on_a_huge_dataset(tmp_path, monkeypatch):
    """Probes, calibration and verification rows, and a shuffled batch, are bounded reads.

    The mock's splits hold 900 million, 100 million and a billion MNIST-shaped examples:
    nothing can read or hold one. Statistics are remembered beforehand (written from a
    small sample), as a prepared dataset's are after its first run. The read counter
    raises past `LIMIT` examples from any split, and every NumPy array built by
    np.concatenate (how `Dataset.take` assembles its rows) is recorded.
    """
    limit = 60_000
    data_dir = tmp_path / "tfds"
    folder = _prepared_folder(data_dir, "mnist")
    with mock_catalog(data_dir, HUGE_SIZES):
        source = sources.open_source("mnist", data_dir=str(data_dir))
        statistics.train_moments(
            source.read_batches("train").unbatch().take(1000).map(
                lambda x, y: (tf.cast(x, tf.float32) / 255, y)),
            folder, source.split_specs["train"])
        counter = ReadCounter(monkeypatch, limit=limit)
        largest = []
        concatenate = np.concatenate

        def recording_concatenate(arrays, *args, **kwargs):
            result = concatenate(arrays, *args, **kwargs)
            largest.append(result.size)
            return result

        monkeypatch.setattr(np, "concatenate", recording_concatenate)
        start = time.monotonic()
        data = datasets.open_dataset("mnist", data_dir=str(data_dir))
        assert counter.counts() == {"train": 0, "validation": 0, "test": 0}
        assert data.info.num_examples == {"train": 9 * 10**8, "validation": 10**8,
                                          "test": 10**9}
        assert not any(data.cached(split) for split in SPLITS)
        for split, rows in (("validation", training.PROBE_EXAMPLES),
                            ("train", training.CALIBRATION_EXAMPLES),
                            ("test", training.VERIFICATION_EXAMPLES)):
            features, labels = data.take(split, rows)
            assert features.shape == (rows, 28, 28, 1) and labels.shape == (rows,)
            # Read ahead: a few read batches (`sources.PARSE_BATCH` rows) that prefetching adds.
            assert counter[split] <= rows + 8192, (split, counter[split])
        # training.export takes its calibration and verification rows with the same bounds.
        recorded = {}

        def fake_export_all(model, export_dir, name, *, representative_data,
                            validation_data, **kwargs):
            recorded.update(calibration=representative_data, verification=validation_data)

        monkeypatch.setattr(training, "export_all", fake_export_all)
        training.export(None, data, training.ExportOptions(str(tmp_path / "exports"), "snn"))
        assert recorded["calibration"][0].shape == (training.CALIBRATION_EXAMPLES, 28, 28, 1)
        assert recorded["verification"][0].shape == (training.VERIFICATION_EXAMPLES, 28, 28, 1)
        # A shuffled train batch fills the shuffle buffer (bounded in bytes), no more; the
        # bound is lowered from 64 MiB (21,345 examples of MNIST) to save time here.
        monkeypatch.setattr(datasets.pipeline, "SHUFFLE_BUFFER_BYTES", 16 * 2**20)
        before = counter["train"]
        features, _ = next(iter(data.batches("train", 256, shuffle_seed=0)))
        assert features.shape == (256, 28, 28, 1)
        buffer = datasets.pipeline.SHUFFLE_BUFFER_BYTES // (4 * 784 + 8)
        assert counter["train"] - before <= buffer + 8192
    assert max(largest) <= training.VERIFICATION_EXAMPLES * 28 * 28
    assert time.monotonic() - start < 120


def test_the_read_counter_stops_a_whole_split_read(tmp_path, monkeypatch):
    """The guard of the test above: reading a whole huge split fails fast, it does not hang."""
    data_dir = tmp_path / "tfds"
    with mock_catalog(data_dir, HUGE_SIZES):
        source = sources.open_source("mnist", data_dir=str(data_dir))
        ReadCounter(monkeypatch, limit=5000)
        start = time.monotonic()
        with pytest.raises(tf.errors.InvalidArgumentError, match="more than 5000"):
            for _ in source.read_batches("test"):
                pass
    assert time.monotonic() - start < 30


# --- downloads -----------------------------------------------------------------------------


def test_download_fails_fast_offline_in_one_line(tmp_path):
    """With no network (this machine's), a catalog download fails in seconds, not minutes."""
    start = time.monotonic()
    with pytest.raises(datasets.DatasetNotAvailableError) as error:
        datasets.open_dataset("mnist", data_dir=str(tmp_path), download=True)
    assert time.monotonic() - start < 2 * sources.DOWNLOAD_PROBE_TIMEOUT + 5
    message = str(error.value)
    assert "\n" not in message and "'mnist' could not be downloaded" in message
    assert f"tfds build mnist --data_dir={tmp_path}" in message
    with pytest.raises(datasets.DatasetNotAvailableError) as error:
        datasets.open_dataset("mnist", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "\n" not in message and "--nodownload" in message and "'mnist'" in message
    assert f"tfds build mnist --data_dir={tmp_path}" in message
    assert not list(tmp_path.rglob("*.tfrecord*"))


def test_download_that_fails_after_the_probe_is_one_line(tmp_path, monkeypatch):
    """Hosts reachable, then the transfer fails (requests raises OSError subclasses)."""
    monkeypatch.setattr(sources, "_check_download_hosts", lambda name, builder: None)

    def failing_download(self, *args, **kwargs):
        raise ConnectionError("Connection reset by peer\nmore detail")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", failing_download)
    with pytest.raises(datasets.DatasetNotAvailableError) as error:
        datasets.open_dataset("mnist", data_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and "Connection reset by peer" in message
    assert f"tfds build mnist --data_dir={tmp_path}" in message


def test_embedded_datasets_never_download(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("an embedded dataset tried to download")

    monkeypatch.setattr(sources, "_check_download_hosts", no_download)
    monkeypatch.setattr(tfds.download.DownloadManager, "download", no_download)
    data = datasets.open_dataset("iris", data_dir=str(tmp_path), download=True)
    assert data.info.num_examples == {"train": 90, "validation": 30, "test": 30}


@pytest.mark.slow
def test_train_py_reports_an_unavailable_catalog_dataset_in_one_line(tmp_path):
    """train.py: exit status 2 and one ``train.py: error:`` line, with and without download."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    data_dir = tmp_path / "tfds"
    runs = {}
    for flag in ("--download", "--nodownload"):  # in parallel: each pays TF's import
        runs[flag] = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "train.py"), "--model=snn",
             "--config.dataset=mnist", f"--data_dir={data_dir}",
             f"--workdir={tmp_path / flag.strip('-')}", flag],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for flag, process in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        errors = [line for line in stderr.splitlines() if line.startswith("train.py: error:")]
        assert process.returncode == 2, stderr[-2000:]
        assert len(errors) == 1 and "Traceback" not in stderr + stdout, stderr[-2000:]
        assert "'mnist'" in errors[0] and f"tfds build mnist --data_dir={data_dir}" in errors[0]
        if flag == "--nodownload":
            assert "--nodownload" in errors[0]
        else:
            assert "could not be downloaded" in errors[0]
    assert not list(data_dir.rglob("*.tfrecord*"))


# --- a prepared catalog dataset -------------------------------------------------------------


class _SyntheticMnist(tfds.image_classification.MNIST, skip_registration=True):
    """Writes files in MNIST's exact format (PNG-encoded images) from synthetic images."""

    name = "mnist"

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._synthetic(50, 0), "test": self._synthetic(20, 1)}

    def _synthetic(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            image = rng.integers(0, 256, size=(28, 28, 1), dtype=np.uint8)
            yield i, {"image": image, "label": i % 10}


def test_prepared_catalog_dataset_is_read_without_download(tmp_path, monkeypatch):
    _SyntheticMnist(data_dir=str(tmp_path)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))

    def no_network(*args, **kwargs):
        raise AssertionError("a prepared dataset tried to reach the network")

    monkeypatch.setattr(sources, "_check_download_hosts", no_network)
    data = datasets.open_dataset("mnist", data_dir=str(tmp_path), download=False)
    # mnist has no validation split: the last 10 % of train are held out.
    assert data.info.num_examples == {"train": 45, "validation": 5, "test": 20}
    raw_x, raw_y = tfds.as_numpy(tfds.load("mnist", split="train", data_dir=str(tmp_path),
                                           download=False, batch_size=-1, as_supervised=True))
    train_x, train_y = data.take("train", 1000)
    valid_x, valid_y = data.take("validation", 1000)
    np.testing.assert_array_equal(np.concatenate([train_x, valid_x]),
                                  raw_x.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(np.concatenate([train_y, valid_y]), raw_y)
    np.testing.assert_allclose(data.info.mean, train_x.astype(np.float64).mean(axis=0),
                               rtol=1e-6)
    assert [x.shape[0] for x, _ in data.batches("validation", 8)] == [5]
