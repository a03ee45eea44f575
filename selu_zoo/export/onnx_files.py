"""ONNX files of a served SavedModel: one per serving signature, checked in onnxruntime.

The files are converted from the SavedModel that TF Serving serves (tf2onnx, `OPSET`), not
from Keras: Keras 3.15's ``model.export(format="onnx")`` fails on a freshly loaded model and
turns a ``Normalization`` layer's statistics into required graph inputs. Every ``Selu`` node's
``alpha`` and ``gamma`` (ONNX defaults when absent) must be the paper's constants in float32,
since converters have mapped them wrongly before (onnx/keras-onnx#163).

Needs the ``onnx`` extra (``pip install 'selu_zoo[onnx]'``: tf2onnx and onnxruntime).

    python -m selu_zoo.export.onnx_files SAVED_MODEL OUT_DIR NAME SIGNATURE...

converts in a child process (tf2onnx's command line, once per signature, in one Python
process), so the exporting process keeps its own logging and TensorFlow state.
"""

import os
import subprocess
import sys

import numpy as np

from selu_zoo.constants import ALPHA, SCALE

OPSET = 17
REQUIREMENTS = ("tf2onnx", "onnxruntime")
INSTALL = "pip install 'selu_zoo[onnx]'"
# ONNX's Selu defaults (the paper's constants rounded to float32).
_DEFAULTS = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}


class OnnxExportError(RuntimeError):
    """An ONNX file could not be converted, or its SELU constants are wrong."""


def file_name(model_name, signature):
    """``<model>.<signature>.onnx``."""
    return f"{model_name}.{signature}.onnx"


def convert(saved_model_dir, out_dir, model_name, signatures):
    """Converts each signature of a SavedModel to ``out_dir/<model>.<signature>.onnx``.

    Args:
      saved_model_dir: a local SavedModel folder.
      out_dir: where the files go (local).
      model_name: the model's name, for the file names.
      signatures: signature names to convert.

    Returns:
      ``{signature: path}``.

    Raises:
      OnnxExportError: with tf2onnx's last output line, if a conversion fails.
    """
    result = subprocess.run(
        [sys.executable, "-m", __name__, saved_model_dir, out_dir, model_name, *signatures],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    paths = {s: os.path.join(out_dir, file_name(model_name, s)) for s in signatures}
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
    expected = (float(np.float32(ALPHA)), float(np.float32(SCALE)))
    found = selu_constants(path)
    wrong = sorted({c for c in found if (float(np.float32(c[0])), float(np.float32(c[1])))
                    != expected})
    if wrong:
        raise OnnxExportError(f"{os.path.basename(path)} has Selu nodes with (alpha, gamma) "
                              f"{wrong}, not {expected}")
    return len(found)


def runner(paths):
    """A runner (`selu_zoo.export.verification`) of ONNX files, one per signature."""
    import onnxruntime  # noqa: PLC0415

    sessions = {name: onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
                for name, path in paths.items()}

    def run(name, inputs):
        session = sessions[name]
        outputs = session.run(None, {k: np.asarray(v) for k, v in inputs.items()})
        return dict(zip((o.name for o in session.get_outputs()), outputs))

    return run


def main(saved_model_dir, out_dir, model_name, *signatures):
    from tf2onnx import convert as tf2onnx_convert  # noqa: PLC0415

    for signature in signatures:
        sys.argv = ["tf2onnx.convert", "--saved-model", saved_model_dir, "--signature_def",
                    signature, "--opset", str(OPSET), "--output",
                    os.path.join(out_dir, file_name(model_name, signature))]
        tf2onnx_convert.main()


if __name__ == "__main__":
    main(*sys.argv[1:])
