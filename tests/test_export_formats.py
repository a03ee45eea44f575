"""The exporter registry (`selu_zoo.export.formats`): one module and one list per format."""

import hashlib
import inspect
import os

import keras
import pytest

from selu_zoo import storage
from selu_zoo.export import export_all, formats, pipeline
from selu_zoo.layers import SELUDense


class Checksum(formats.Exporter):
    """A toy format: the SHA-256 of the SavedModel's graph, in ``<model>.sha256``."""

    name = "checksum"
    report_key = "checksum"

    def file_names(self, model_name, signatures):
        return {"checksum": f"{model_name}.sha256"}

    def write(self, context):
        digest = hashlib.sha256(storage.read_bytes(
            storage.join(context.staging, "saved_model.pb"))).hexdigest()
        storage.atomic_write(storage.join(context.extras, context.names["checksum"]), digest)
        return digest

    def verify(self, context, written):
        assert context.served_run is not None  # the SavedModel ran first
        return {"sha256": written}


def test_a_format_registered_in_one_list_is_written_reported_and_published(
        tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "EXPORTERS", (*formats.EXPORTERS, Checksum()))
    assert "checksum" in pipeline.available_formats()[0]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), SELUDense(4)], name="toy")
    result = export_all(model, str(tmp_path), "toy", formats=("checksum",))
    digest = hashlib.sha256(open(os.path.join(result.version_dir, "saved_model.pb"),
                                 "rb").read()).hexdigest()
    assert open(result.files["checksum"]).read() == digest
    assert result.report["checksum"] == {"sha256": digest}
    assert result.report["formats"] == ["saved_model", "warmup_requests", "checksum"]
    assert sorted(os.listdir(os.path.dirname(result.files["report"]))) == [
        "report.json", "tf_serving_warmup_requests", "toy.sha256"]
    assert pipeline.artifact_names("toy", ("checksum",)) == {
        "report": "report.json", "warmup_requests": "tf_serving_warmup_requests",
        "checksum": "toy.sha256"}


def test_the_optional_formats_and_file_names_come_from_the_registry():
    optional = [e for e in formats.EXPORTERS if e.optional]
    assert list(pipeline.OPTIONAL_FORMATS) == [e.name for e in optional] == [
        "keras", "tflite", "onnx"]
    assert [e.name for e in formats.EXPORTERS if not e.optional] == [
        "saved_model", "warmup_requests"]
    names = pipeline.artifact_names("m", signatures=["serving_default"])
    assert names == {"report": "report.json", "keras": "m.keras",
                     "tflite_float32": "m.tflite", "tflite_float16": "m.f16.tflite",
                     "tflite_int8": "m.int8.tflite",
                     "onnx_serving_default": "m.serving_default.onnx",
                     "warmup_requests": "tf_serving_warmup_requests"}


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path):
    model = keras.Sequential([keras.Input((3,)), SELUDense(4)], name="toy")
    with pytest.raises(ValueError, match=r"unknown export formats \['gif'\]"):
        export_all(model, str(tmp_path), "toy", formats=("gif",))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("exporter", formats.EXPORTERS, ids=lambda e: e.name)
def test_each_exporters_write_and_verify_fit_in_40_lines(exporter):
    for method in (type(exporter).write, type(exporter).verify):
        if method is not getattr(formats.Exporter, method.__name__):
            assert len(inspect.getsource(method).splitlines()) <= 40, method.__qualname__
