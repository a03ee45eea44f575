"""ONNX files, one per serving signature, converted from the served SavedModel with tf2onnx.

Not from Keras: Keras 3.15's ``model.export(format="onnx")`` fails on a freshly loaded model
and turns a ``Normalization`` layer's statistics into graph inputs. Every ``Selu`` node's
``alpha`` and ``gamma`` must be the paper's constants, since converters have mapped them
wrongly before (onnx/keras-onnx#163). Needs the ``onnx`` extra (tf2onnx, onnxruntime).
"""

import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from selu_zoo import constants, layers, storage, tasks
from selu_zoo.export import serving, tflite, verification
from selu_zoo.export.formats import base

OPSET = 17
# ONNX's Selu defaults (the paper's constants rounded to float32).
_DEFAULTS = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}
# tf2onnx's command line once per signature, in one child process, so that the exporting
# process keeps its own logging and TensorFlow state.
_CONVERTER = """
import json, sys
from tf2onnx import convert
for argv in json.loads(sys.argv[1]):
    sys.argv = ["tf2onnx.convert", *argv]
    convert.main()
"""
# Where ``exp(x) - 1`` loses digits: the exact form must not.
NEAR_ZERO_X = (-1e-8, -1e-6, -1e-3, 0.0, 1e-3)
NEAR_ZERO_RTOL = 1e-6


class OnnxExportError(RuntimeError):
    """An ONNX file could not be converted, or its SELU constants are wrong."""


def file_name(model_name, signature):
    """``<model>.<signature>.onnx``."""
    return f"{model_name}.{signature}.onnx"


def convert(saved_model_dir, out_dir, model_name, signatures):
    """Converts each signature of a local SavedModel to ``out_dir/<model>.<signature>.onnx``.

    Returns:
      ``{signature: path}``.

    Raises:
      OnnxExportError: with tf2onnx's last output line, if a conversion fails.
    """
    paths = {s: os.path.join(out_dir, file_name(model_name, s)) for s in signatures}
    argvs = [["--saved-model", saved_model_dir, "--signature_def", s, "--opset", str(OPSET),
              "--output", path] for s, path in paths.items()]
    result = subprocess.run([sys.executable, "-c", _CONVERTER, json.dumps(argvs)],
                            capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0 or not all(os.path.exists(p) for p in paths.values()):
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise OnnxExportError(f"tf2onnx could not convert {saved_model_dir}: {lines[-1]}")
    return paths


def selu_constants(path):
    """The ``(alpha, gamma)`` of every ``Selu`` node of an ONNX file, defaults filled in."""
    import onnx  # noqa: PLC0415

    found = []
    for node in onnx.load(path).graph.node:
        if node.op_type == "Selu":
            values = dict(_DEFAULTS, **{a.name: a.f for a in node.attribute})
            found.append((values["alpha"], values["gamma"]))
    return found


def check_selu_constants(path):
    """Raises unless every ``Selu`` node computes the paper's SELU in float32.

    Returns:
      The number of ``Selu`` nodes.

    Raises:
      OnnxExportError: naming the file and the wrong constants.
    """
    expected = (float(np.float32(constants.ALPHA)), float(np.float32(constants.SCALE)))
    found = selu_constants(path)
    wrong = sorted({c for c in found if (float(np.float32(c[0])), float(np.float32(c[1])))
                    != expected})
    if wrong:
        raise OnnxExportError(f"{os.path.basename(path)} has Selu nodes with (alpha, gamma) "
                              f"{wrong}, not {expected}")
    return len(found)


def runner(paths):
    """A runner (`selu_zoo.export.verification`) of ONNX files, ``{signature: path}``."""
    import onnxruntime  # noqa: PLC0415

    sessions = {name: onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
                for name, path in paths.items()}

    def run(name, inputs):
        session = sessions[name]
        outputs = session.run(None, {k: np.asarray(v) for k, v in inputs.items()})
        return dict(zip((o.name for o in session.get_outputs()), outputs))

    return run


def near_zero_probe(directory, serving_form):
    """Writes and converts a one-layer SavedModel (Input ``x`` -> `selu_zoo.layers.SELU`) as
    the real one is written and converted; returns its ONNX file's path."""
    x = keras.Input((len(NEAR_ZERO_X),), name="x")
    model = keras.Model(x, layers.SELU()(x), name="near_zero")
    saved = os.path.join(directory, "near_zero")
    serving.write_saved_model(model, saved, serving_form=serving_form)
    return convert(saved, directory, "near_zero", [tasks.SERVING_DEFAULT])[
        tasks.SERVING_DEFAULT]


def near_zero_error(path):
    """The largest relative error of an ONNX SELU (`near_zero_probe`) at `NEAR_ZERO_X`,
    against float64 SELU of the float32 inputs (where SELU is 0, any nonzero output counts
    as an infinite error)."""
    x = np.array([NEAR_ZERO_X], np.float32)
    got = next(iter(runner({"p": path})("p", {"x": x}).values()))
    exact = np.where(x < 0, constants.SCALE * constants.ALPHA * np.expm1(x.astype(np.float64)),
                     constants.SCALE * x.astype(np.float64))
    error = np.abs(np.asarray(got, np.float64).reshape(exact.shape) - exact)
    relative = np.where(exact != 0, error / np.where(exact != 0, np.abs(exact), 1.0),
                        np.where(error == 0, 0.0, np.inf))
    return float(np.max(relative))


def check_near_zero(serving_form):
    """Raises unless the `near_zero_probe` is within `NEAR_ZERO_RTOL`.

    Returns:
      ``{"x": NEAR_ZERO_X, "max_rel_err": ...}``.

    Raises:
      verification.ExportVerificationError: if the ONNX SELU is off near 0.
    """
    with tempfile.TemporaryDirectory(prefix="selu_zoo-onnx-near-zero-") as directory:
        error = near_zero_error(near_zero_probe(directory, serving_form))
    if not error <= NEAR_ZERO_RTOL:
        raise verification.ExportVerificationError(
            f"the ONNX SELU of serving_form={serving_form!r} is off near 0: relative error "
            f"{error:.3g} > {NEAR_ZERO_RTOL:g} at x in {list(NEAR_ZERO_X)}")
    return {"x": list(NEAR_ZERO_X), "max_rel_err": error}


class Onnx(base.Exporter):
    """``<model>.<signature>.onnx`` per signature at `OPSET`, run in onnxruntime against the
    SavedModel, ``Selu`` constants checked, and under ``serving_form="exact"`` SELU checked
    near 0. A mixed-precision model is converted from its float32 twin's SavedModel."""

    name = "onnx"
    requirements = ("tf2onnx", "onnxruntime")
    install = "pip install 'selu_zoo[onnx]'"
    report_key = "onnx"

    def file_names(self, model_name, signatures):
        return {f"onnx_{s}": file_name(model_name, s) for s in signatures}

    def write(self, context):
        signatures = [e.name for e in context.endpoints]
        twin = tflite.float32_twin(context.model)
        with tempfile.TemporaryDirectory(prefix="selu_zoo-onnx-") as local:
            source, served = context.staging, context.served
            if twin is not context.model or not storage.is_local(source):  # the converter
                source = os.path.join(local, "saved_model")  # is another process: local copy
                serving.write_saved_model(twin, source, endpoints=tasks.serving_endpoints(twin),
                                          serving_form=context.serving_form)
                served = verification.outputs_of(verification.saved_model_runner(source),
                                                  context.inputs)
            paths = convert(source, local, context.model_name, signatures)
            for signature, path in paths.items():
                with open(path, "rb") as f:
                    storage.atomic_write(
                        storage.join(context.extras, context.names[f"onnx_{signature}"]),
                        f.read())
        return {"served": {s: served[s] for s in signatures},
                "source": "saved_model" if twin is context.model else "float32 twin"}

    def verify(self, context, written):
        signatures = list(written["served"])
        files = {s: context.names[f"onnx_{s}"] for s in signatures}
        with tempfile.TemporaryDirectory(prefix="selu_zoo-onnx-") as local:
            paths = {s: os.path.join(local, name) for s, name in files.items()}
            for signature, path in paths.items():  # onnxruntime reads local files
                with open(path, "wb") as f:
                    f.write(storage.read_bytes(storage.join(context.extras, files[signature])))
            selu_nodes = {s: check_selu_constants(p) for s, p in paths.items()}
            outputs = verification.outputs_of(runner(paths),
                                               {s: context.inputs[s] for s in signatures})
        parity = verification.check_parity("the ONNX files", outputs, written["served"],
                                           context.tolerance)
        near_zero = (check_near_zero(context.serving_form) if context.serving_form == "exact"
                     else None)
        return {"opset": OPSET, "max_abs_diff": parity, "selu_nodes": selu_nodes,
                "files": files, "source": written["source"], "near_zero": near_zero}
