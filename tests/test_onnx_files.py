"""ONNX exports of the four zoo models: converted from the served SavedModel, run in
onnxruntime against the SavedModel, SELU constants checked (tf2onnx + onnxruntime, real)."""

import json
import os

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf

from models import MODEL_NAMES, build_model
from selu_zoo.constants import ALPHA, SCALE
from selu_zoo.export import ExportVerificationError, export_all, formats, pipeline
from selu_zoo.export.formats import onnx as onnx_format
from selu_zoo.layers import SELUDense
from test_models_every_backend import zoo_config, zoo_data, zoo_info

SIGNATURES = {"snn": ["serving_default"], "snn_rnn": ["serving_default"],
              "snn_cnn": ["serving_default"],
              "snn_vae": ["reconstruct", "encode", "decode", "sample"]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every zoo model exported with ONNX only (beside the SavedModel): name -> result."""
    export_dir = str(tmp_path_factory.mktemp("exports"))
    results = {}
    for name in MODEL_NAMES:
        keras.utils.set_random_seed(0)
        x, y = zoo_data(name)
        model = build_model(zoo_config(name), zoo_info(x, y))
        results[name] = export_all(model, export_dir, name, validation_data=(x, y),
                                   formats=("onnx",))
    return results


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_signature_runs_in_onnxruntime_as_the_saved_model_does(exported, name):
    result = exported[name]
    report = json.loads(open(result.files["report"]).read())
    assert report["onnx"]["opset"] == onnx_format.OPSET == 17
    assert sorted(report["onnx"]["files"]) == sorted(SIGNATURES[name])
    served = tf.saved_model.load(result.version_dir)
    run = onnx_format.runner({s: result.files[f"onnx_{s}"] for s in SIGNATURES[name]})
    rng = np.random.default_rng(1)
    for signature in SIGNATURES[name]:
        specs = served.signatures[signature].structured_input_signature[1]
        inputs = {k: rng.random([5, *spec.shape[1:]]).astype(spec.dtype.as_numpy_dtype)
                  for k, spec in specs.items()}
        expected = {k: v.numpy() for k, v in served.signatures[signature](
            **{k: tf.constant(v) for k, v in inputs.items()}).items()}
        got = run(signature, inputs)
        assert sorted(got) == sorted(expected), signature
        for output, value in expected.items():
            bound = 1e-5 * max(1.0, float(np.abs(value).max()))
            assert np.abs(got[output] - value).max() <= bound, (signature, output)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_selu_node_carries_the_papers_constants(exported, name):
    for signature in SIGNATURES[name]:
        path = exported[name].files[f"onnx_{signature}"]
        constants = onnx_format.selu_constants(path)
        assert constants, f"{signature}: no Selu node"
        assert set(constants) == {(float(np.float32(ALPHA)), float(np.float32(SCALE)))}


def test_a_selu_node_with_wrong_constants_is_refused(exported, tmp_path):
    model = onnx.load(exported["snn"].files["onnx_serving_default"])
    node = next(n for n in model.graph.node if n.op_type == "Selu")
    node.attribute.append(onnx.helper.make_attribute("alpha", 1.0))
    path = str(tmp_path / "wrong.onnx")
    onnx.save(model, path)
    with pytest.raises(onnx_format.OnnxExportError, match=r"wrong.onnx has Selu nodes"):
        onnx_format.check_selu_constants(path)


def test_only_the_requested_formats_are_written(exported):
    extras = os.path.dirname(exported["snn"].files["report"])
    assert sorted(os.listdir(extras)) == ["report.json", "snn.serving_default.onnx",
                                          "tf_serving_warmup_requests"]


def test_a_format_whose_dependencies_are_missing_is_named_with_its_install_command(
        monkeypatch):
    monkeypatch.setattr(formats.Onnx, "requirements", ("selu_zoo_no_such_module",))
    present, missing = pipeline.available_formats()
    assert "onnx" not in present and missing == {"onnx": "pip install 'selu_zoo[onnx]'"}
    assert {"keras", "tflite"} <= set(present)


# --- the exact form near 0 -----------------------------------------------------------------


def _small_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)), SELUDense(8), keras.layers.Dense(2)],
                            name="small")


def _exp_minus_one_selu(path):
    """An ONNX SELU computed as ``SCALE * ALPHA * (exp(x) - 1)``: 0 at x = -1e-8."""
    from onnx import TensorProto, helper  # noqa: PLC0415

    def constant(name, value):
        return helper.make_tensor(name, TensorProto.FLOAT, [], [value])

    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Sub", ["e", "one"], ["m"]),
             helper.make_node("Mul", ["m", "scale_alpha"], ["negative"]),
             helper.make_node("Mul", ["x", "scale"], ["positive"]),
             helper.make_node("Less", ["x", "zero"], ["below"]),
             helper.make_node("Where", ["below", "negative", "positive"], ["y"])]
    graph = helper.make_graph(
        nodes, "exp_minus_one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])],
        [constant("one", 1.0), constant("zero", 0.0), constant("scale", SCALE),
         constant("scale_alpha", SCALE * ALPHA)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_the_exact_form_is_checked_near_zero(tmp_path):
    result = export_all(_small_model(), str(tmp_path), "small", formats=("onnx",),
                        serving_form="exact")
    near_zero = json.loads(open(result.files["report"]).read())["onnx"]["near_zero"]
    assert near_zero["x"] == [-1e-8, -1e-6, -1e-3, 0.0, 1e-3]
    assert 0 <= near_zero["max_rel_err"] <= 1e-6


def test_an_onnx_selu_computing_exp_minus_one_is_refused_and_nothing_is_published(
        tmp_path, monkeypatch):
    bad = _exp_minus_one_selu(str(tmp_path / "bad.onnx"))
    assert onnx_format.near_zero_error(bad) == pytest.approx(1.0, abs=0.01)  # -1e-8 -> 0
    probes = []

    def probe(directory, serving_form):
        probes.append(serving_form)
        return bad

    monkeypatch.setattr(onnx_format, "near_zero_probe", probe)
    with pytest.raises(ExportVerificationError, match=r"off near 0: relative error 1"):
        export_all(_small_model(), str(tmp_path / "exports"), "small", formats=("onnx",),
                   serving_form="exact")
    assert probes == ["exact"] and not os.path.exists(tmp_path / "exports" / "small" / "1")
