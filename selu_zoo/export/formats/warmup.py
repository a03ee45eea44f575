"""TF Serving warmup requests: ``assets.extra/tf_serving_warmup_requests``.

TF Serving replays the ``PredictionLog`` records of this TFRecord file (at most 1000) when it
loads a version. Each record is a ``PredictLog``: the request (model, signature, inputs) and
the SavedModel's response, so a reader can check the replay too.
"""

import collections
import contextlib
import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from selu_zoo import storage, tasks
from selu_zoo.export.formats import base
from selu_zoo.export.publish import ASSETS_EXTRA

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving replays no more than this
# Examples per endpoint recorded as TF Serving warmup requests.
WARMUP_EXAMPLES = 4

# One request (``inputs``) of a signature and the SavedModel's response (``outputs``), each
# ``{name: np.ndarray}``.
WarmupRecord = collections.namedtuple("WarmupRecord", ["signature_name", "inputs", "outputs"])


def warmup_path(version_dir):
    """``<version_dir>/assets.extra/tf_serving_warmup_requests``, where TF Serving looks."""
    return storage.join(version_dir, ASSETS_EXTRA, WARMUP_FILE)


def _check_tensors(what, tensors, record):
    if not isinstance(tensors, dict) or not tensors:
        raise ValueError(f"warmup record {record}: {what} must be a non-empty dict of arrays, "
                         f"got {type(tensors).__name__}")
    return {str(k): np.asarray(v) for k, v in tensors.items()}


def write_warmup_requests(path, model_name, records):
    """Writes warmup records as a TFRecord of ``PredictionLog``, atomically.

    Args:
      path: the file (see `warmup_path`); its folder is created.
      model_name: the TF Serving model name of each request's ``model_spec``.
      records: ``(signature_name, inputs, outputs)`` triples or `WarmupRecord`\\ s.

    Returns:
      ``path``.

    Raises:
      ValueError: if there are no records, more than `MAX_RECORDS`, or one is malformed.
      StorageError: if the file cannot be written.
    """
    logs = []
    for index, record in enumerate(records):
        signature_name, inputs, outputs = record
        if not isinstance(signature_name, str) or not signature_name:
            raise ValueError(f"warmup record {index}: signature_name must be a non-empty "
                             f"string, got {signature_name!r}")
        inputs = _check_tensors("inputs", inputs, index)
        outputs = _check_tensors("outputs", outputs, index)
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = predict_pb2.PredictResponse()
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request, response=response)))
    if not logs or len(logs) > MAX_RECORDS:
        raise ValueError(f"write between 1 and {MAX_RECORDS} warmup records (TF Serving "
                         f"replays at most {MAX_RECORDS}), got {len(logs)}")
    path = os.fspath(path)
    storage.makedirs(os.path.dirname(path))
    temp = storage.temporary_sibling(path)
    try:
        with storage.reported("write", path), tf.io.TFRecordWriter(temp) as writer:
            for log in logs:
                writer.write(log.SerializeToString())
        storage.rename(temp, path, overwrite=True)
    except BaseException:
        with contextlib.suppress(OSError):
            storage.remove(temp)
        raise
    return path


def read_warmup_requests(path):
    """Reads a warmup file (any predict-log warmup) as a list of `WarmupRecord`.

    Raises:
      CorruptFileError: if it is not a TFRecord of ``PredictionLog`` with ``predict_log``.
      StorageError: if it cannot be read.
    """
    path = os.fspath(path)
    if not storage.exists(path):
        raise storage.StorageError(f"cannot read {path}: no such file or directory")
    records = []
    try:
        for index, serialized in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
            log = prediction_log_pb2.PredictionLog.FromString(serialized)
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"record {index} is a {log.WhichOneof('log_type')}, "
                                 f"not a predict_log")
            request, response = log.predict_log.request, log.predict_log.response
            records.append(WarmupRecord(
                request.model_spec.signature_name or tasks.SERVING_DEFAULT,
                {k: tf.make_ndarray(v) for k, v in request.inputs.items()},
                {k: tf.make_ndarray(v) for k, v in response.outputs.items()}))
    except (tf.errors.DataLossError, ValueError) as error:  # DecodeError is a ValueError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise storage.CorruptFileError(f"{path} is not a TF Serving warmup file ({reason}); "
                                       f"export the model again") from None
    return records


def records_from_saved_model(saved_model_dir, examples):
    """Runs ``(signature_name, inputs)`` examples through a SavedModel as `WarmupRecord`\\ s.

    Inputs are cast to the signature's dtypes (TF Serving fails a load whose warmup request
    has other dtypes) and recorded as cast.

    Raises:
      KeyError: for a signature the SavedModel lacks (the message lists those it has).
      ValueError: if ``inputs`` do not name exactly the signature's inputs.
    """
    loaded = tf.saved_model.load(os.fspath(saved_model_dir))
    records = []
    for signature_name, inputs in examples:
        if signature_name not in loaded.signatures:
            raise KeyError(f"{saved_model_dir} has no signature {signature_name!r}; it has "
                           f"{sorted(loaded.signatures.keys())}")
        function = loaded.signatures[signature_name]
        specs = function.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise ValueError(f"signature {signature_name!r} of {saved_model_dir} takes inputs "
                             f"{sorted(specs)}, got {sorted(inputs)}")
        inputs = {k: np.asarray(v).astype(specs[k].dtype.as_numpy_dtype)
                  for k, v in inputs.items()}
        outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        records.append(WarmupRecord(signature_name, inputs,
                                    {k: v.numpy() for k, v in outputs.items()}))
    return records


def verify_warmup_requests(saved_model_dir, path, *, rtol=1e-6, atol=1e-6):
    """Replays every warmup request through the SavedModel and compares the outputs
    (``np.testing.assert_allclose``; strings and integers exactly).

    Returns:
      The number of records checked.

    Raises:
      ValueError: naming the record, signature and output that differ or are missing.
      CorruptFileError, StorageError: as `read_warmup_requests`.
    """
    loaded = tf.saved_model.load(os.fspath(saved_model_dir))
    records = read_warmup_requests(path)
    for index, record in enumerate(records):
        where = f"{path} record {index} ({record.signature_name!r})"
        if record.signature_name not in loaded.signatures:
            raise ValueError(f"{where}: {saved_model_dir} has no such signature")
        try:
            got = loaded.signatures[record.signature_name](
                **{k: tf.constant(v) for k, v in record.inputs.items()})
        except (TypeError, tf.errors.OpError) as error:
            raise ValueError(f"{where}: the SavedModel rejects its inputs: "
                             f"{str(error).splitlines()[0]}") from None
        if set(got) != set(record.outputs):
            raise ValueError(f"{where}: outputs {sorted(record.outputs)} recorded, the "
                             f"SavedModel gives {sorted(got)}")
        for name, expected in record.outputs.items():
            actual = got[name].numpy()
            try:
                if np.issubdtype(expected.dtype, np.inexact):
                    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
                else:
                    np.testing.assert_array_equal(actual, expected)
            except AssertionError:
                raise ValueError(f"{where}: output {name!r} differs from the recorded "
                                 f"response (max abs diff "
                                 f"{_max_difference(actual, expected)})") from None
    return len(records)


def _max_difference(actual, expected):
    try:
        return float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64))))
    except (TypeError, ValueError):
        return "n/a"


class WarmupRequests(base.Exporter):
    """`WARMUP_EXAMPLES` requests per endpoint (and for ``serving_default``), answered by the
    SavedModel (so it runs after it); no report entry."""

    name = "warmup_requests"
    optional = False

    def file_names(self, model_name, signatures):
        return {"warmup_requests": WARMUP_FILE}

    def write(self, context):
        requests = {e: {k: v[:WARMUP_EXAMPLES] for k, v in inputs.items()}
                    for e, inputs in context.inputs.items()}
        first = context.endpoints[0].name
        if first != tasks.SERVING_DEFAULT:  # its alias is a signature too
            requests[tasks.SERVING_DEFAULT] = requests[first]
        return write_warmup_requests(
            storage.join(context.extras, context.names["warmup_requests"]), context.model_name,
            [(name, batch, context.served_run(name, batch)) for name, batch in requests.items()])
