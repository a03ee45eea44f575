"""ONNX files, one per serving signature, converted from the served SavedModel
(`selu_zoo.export.onnx_files`), and the exact SELU form checked near 0."""

import os
import tempfile

import keras
import numpy as np

from selu_zoo import constants, layers, storage, tasks
from selu_zoo.export import onnx_files, serving, tflite, verification
from selu_zoo.export.formats import base

# Where ``exp(x) - 1`` loses digits: the exact form must not.
NEAR_ZERO_X = (-1e-8, -1e-6, -1e-3, 0.0, 1e-3)
NEAR_ZERO_RTOL = 1e-6


def near_zero_probe(directory, serving_form):
    """Writes a one-layer SavedModel (Input -> `selu_zoo.layers.SELU`) as the real one is
    written and converts it as the real one is converted.

    Args:
      directory: a local folder for the SavedModel and the ONNX file.
      serving_form: the SavedModel's SELU form (`selu_zoo.ops.SERVING_FORMS`).

    Returns:
      The ONNX file's path; its ``serving_default`` takes ``x`` of shape
      ``(None, len(NEAR_ZERO_X))``.
    """
    x = keras.Input((len(NEAR_ZERO_X),), name="x")
    model = keras.Model(x, layers.SELU()(x), name="near_zero")
    saved = os.path.join(directory, "near_zero")
    serving.write_saved_model(model, saved, serving_form=serving_form)
    return onnx_files.convert(saved, directory, "near_zero", [tasks.SERVING_DEFAULT])[
        tasks.SERVING_DEFAULT]


def near_zero_error(path):
    """The largest relative error of an ONNX SELU (`near_zero_probe`) at `NEAR_ZERO_X`,
    against float64 ``SCALE * ALPHA * expm1(x)`` / ``SCALE * x`` of the float32 inputs (where
    SELU is 0, any nonzero output counts as an infinite error)."""
    x = np.array([NEAR_ZERO_X], np.float32)
    got = next(iter(onnx_files.runner({"p": path})("p", {"x": x}).values()))
    exact = np.where(x < 0, constants.SCALE * constants.ALPHA * np.expm1(x.astype(np.float64)),
                     constants.SCALE * x.astype(np.float64))
    error = np.abs(np.asarray(got, np.float64).reshape(exact.shape) - exact)
    relative = np.where(exact != 0, error / np.where(exact != 0, np.abs(exact), 1.0),
                        np.where(error == 0, 0.0, np.inf))
    return float(np.max(relative))


def check_near_zero(serving_form):
    """Converts `near_zero_probe` and raises unless it is within `NEAR_ZERO_RTOL`.

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
    """``<model>.<signature>.onnx`` per signature (tf2onnx, `onnx_files.OPSET`), run in
    onnxruntime against the SavedModel, ``Selu`` constants checked, and under
    ``serving_form="exact"`` the exact SELU checked near 0 (`check_near_zero`).

    A mixed-precision model is converted from the SavedModel of its float32 twin (as TFLite
    is: ONNX Runtime has no mixed bfloat16 kernels) and checked against that.
    """

    name = "onnx"
    requirements = onnx_files.REQUIREMENTS
    install = onnx_files.INSTALL
    report_key = "onnx"

    def file_names(self, model_name, signatures):
        return {f"onnx_{s}": onnx_files.file_name(model_name, s) for s in signatures}

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
            paths = onnx_files.convert(source, local, context.model_name, signatures)
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
            selu_nodes = {s: onnx_files.check_selu_constants(p) for s, p in paths.items()}
            outputs = verification.outputs_of(onnx_files.runner(paths),
                                               {s: context.inputs[s] for s in signatures})
        parity = verification.check_parity("the ONNX files", outputs, written["served"],
                                           context.tolerance)
        near_zero = (check_near_zero(context.serving_form) if context.serving_form == "exact"
                     else None)
        return {"opset": onnx_files.OPSET, "max_abs_diff": parity, "selu_nodes": selu_nodes,
                "files": files, "source": written["source"], "near_zero": near_zero}
