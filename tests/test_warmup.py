"""selu_zoo.export.formats.warmup: TF Serving warmup requests that parse and replay exactly.

A tiny real SavedModel with two signatures is published through `publish` with its warmup
file in ``assets.extra/``, as the export pipeline does; the file is then read with the bare
protos and replayed through the SavedModel loaded from the published version.
"""

import uuid

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from selu_zoo import storage
from selu_zoo.export import publish
from selu_zoo.export.formats import warmup


class Tiny(tf.Module):
    """Two signatures, float and integer/string inputs."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    def predict(self, features):
        return {"scores": tf.nn.selu(features @ self.w), "total": tf.reduce_sum(features, 1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="ids"),
                                  tf.TensorSpec([None], tf.string, name="tags")])
    def lookup(self, ids, tags):
        return {"doubled": ids * 2, "length": tf.strings.length(tags)}


EXAMPLES = [
    ("serving_default", {"features": np.array([[0.1, -2.0, 3.0], [1.0, 1.0, -1.0]],
                                              np.float32)}),
    ("serving_default", {"features": np.array([[-0.5, 0.25, 0.0]], np.float32)}),
    ("lookup", {"ids": np.array([3, -4, 5], np.int64),
                "tags": np.array([b"a", b"bcd", b""], object)}),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("warmup_exports"))

    def write_version(staging):
        module = Tiny()
        tf.saved_model.save(module, staging, signatures={"serving_default": module.predict,
                                                         "lookup": module.lookup})
        records = warmup.records_from_saved_model(staging, EXAMPLES)
        warmup.write_warmup_requests(warmup.warmup_path(staging), "tiny", records)
        warmup.verify_warmup_requests(staging, warmup.warmup_path(staging))

    result = publish.publish(export_dir, "tiny", write_version)
    return {"version_dir": result.version_dir, "file": warmup.warmup_path(result.version_dir)}


def test_the_file_is_where_tf_serving_looks_and_parses_as_prediction_logs(published):
    assert published["file"].endswith("/1/assets.extra/tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(raw) for raw in
            tf.data.TFRecordDataset(published["file"]).as_numpy_iterator()]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * 3
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.name for r in requests] == ["tiny"] * 3
    assert [r.model_spec.signature_name for r in requests] == [s for s, _ in EXAMPLES]
    assert [sorted(r.inputs) for r in requests] == [["features"], ["features"], ["ids", "tags"]]
    assert sorted(logs[2].predict_log.response.outputs) == ["doubled", "length"]


def test_replaying_each_request_gives_the_recorded_outputs(published):
    loaded = tf.saved_model.load(published["version_dir"])
    records = warmup.read_warmup_requests(published["file"])
    assert len(records) == len(EXAMPLES)
    for record, (signature, inputs) in zip(records, EXAMPLES):
        assert record.signature_name == signature
        for name, value in inputs.items():
            np.testing.assert_array_equal(record.inputs[name], value)
            assert record.inputs[name].shape == value.shape
        replayed = loaded.signatures[signature](**{k: tf.constant(v)
                                                   for k, v in record.inputs.items()})
        assert sorted(replayed) == sorted(record.outputs)
        for name, expected in record.outputs.items():
            assert replayed[name].dtype.as_numpy_dtype == expected.dtype
            np.testing.assert_array_equal(replayed[name].numpy(), expected)
    scores = records[0].outputs["scores"]  # and the recorded outputs are the model's
    np.testing.assert_allclose(scores, tf.nn.selu(EXAMPLES[0][1]["features"] @ np.array(
        [[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]], np.float32)), rtol=1e-6)
    np.testing.assert_array_equal(records[2].outputs["length"], [1, 3, 0])
    assert warmup.verify_warmup_requests(published["version_dir"], published["file"]) == 3


def test_a_response_that_does_not_replay_is_caught(published, tmp_path):
    records = warmup.read_warmup_requests(published["file"])
    wrong = records[0]._replace(outputs={**records[0].outputs,
                                         "total": records[0].outputs["total"] + 1e-3})
    path = str(tmp_path / "requests")
    warmup.write_warmup_requests(path, "tiny", [wrong] + records[1:])
    with pytest.raises(ValueError, match=r"record 0 \('serving_default'\): output 'total' "
                                         r"differs"):
        warmup.verify_warmup_requests(published["version_dir"], path)
    missing = records[2]._replace(signature_name="gone")
    warmup.write_warmup_requests(path, "tiny", [missing])
    with pytest.raises(ValueError, match="has no such signature"):
        warmup.verify_warmup_requests(published["version_dir"], path)


def test_non_local_paths_work():
    path = f"ram://warmup-{uuid.uuid4().hex[:8]}/1/assets.extra/tf_serving_warmup_requests"
    record = ("serving_default", {"x": np.arange(6, dtype=np.float32).reshape(2, 3)},
              {"y": np.array([1.5, -2.5], np.float64)})
    warmup.write_warmup_requests(path, "m", [record])
    (back,) = warmup.read_warmup_requests(path)
    assert back.signature_name == "serving_default"
    np.testing.assert_array_equal(back.inputs["x"], record[1]["x"])
    assert back.outputs["y"].dtype == np.float64
    assert storage.listdir(path.rsplit("/", 1)[0]) == ["tf_serving_warmup_requests"]


@pytest.mark.parametrize("records, message", [
    ([], "between 1 and 1000"),
    ([("s", {"x": np.zeros(1)}, {"y": np.zeros(1)})] * 1001, "between 1 and 1000"),
    ([("", {"x": np.zeros(1)}, {"y": np.zeros(1)})], "signature_name"),
    ([("s", {}, {"y": np.zeros(1)})], "inputs must be a non-empty dict"),
    ([("s", {"x": np.zeros(1)}, None)], "outputs must be a non-empty dict"),
], ids=["none", "1001", "no-signature", "no-inputs", "no-outputs"])
def test_bad_records_are_refused_and_nothing_is_written(tmp_path, records, message):
    with pytest.raises(ValueError, match=message):
        warmup.write_warmup_requests(str(tmp_path / "w"), "m", records)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_files_fail_in_one_line(tmp_path, published):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a tfrecord at all")
    with pytest.raises(storage.CorruptFileError, match="is not a TF Serving warmup file"):
        warmup.read_warmup_requests(str(garbage))
    with pytest.raises(storage.StorageError, match="no such file"):
        warmup.read_warmup_requests(str(tmp_path / "missing"))
    with pytest.raises(KeyError, match="has no signature 'nope'"):
        warmup.records_from_saved_model(published["version_dir"],
                                        [("nope", {"x": np.zeros(1)})])
    with pytest.raises(ValueError, match=r"takes inputs \['ids', 'tags'\], got \['ids'\]"):
        warmup.records_from_saved_model(published["version_dir"],
                                        [("lookup", {"ids": np.zeros(1)})])


def test_inputs_are_recorded_in_the_signatures_dtypes(published):
    ids, features = warmup.records_from_saved_model(  # lists and float64, as users pass them
        published["version_dir"], [("lookup", {"ids": [1, 2], "tags": [b"x", b"yz"]}),
                                   ("serving_default", {"features": np.ones((1, 3))})])
    assert ids.inputs["ids"].dtype == np.int64
    np.testing.assert_array_equal(ids.outputs["length"], [1, 2])
    assert features.inputs["features"].dtype == np.float32
    assert features.outputs["total"].dtype == np.float32
