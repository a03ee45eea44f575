r"""Re-exports a ``.keras`` model: SavedModel version, ``.keras``, TFLite files and report.

    python -m selu_zoo.export --model_path=workdir/snn.keras --export_dir=saved_models \
        [--model_name=snn] [--keep_versions=5] [--dataset=digits]

Prints a JSON summary (paths, parity and accuracy numbers) on success. Any error prints one
line starting with ``error:`` on stderr and exits non-zero; nothing new is left behind.
"""

import json
import os
import sys
import zipfile

from absl import app
from absl import flags

_MODEL_PATH = flags.DEFINE_string(
    "model_path", None, "The .keras file to export (loaded with safe_mode=True after "
    "`import selu_zoo`).", required=True)
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Serving base directory: writes <export_dir>/<model_name>/<version>/, "
    "the .keras/.tflite files beside the versions, and <export_dir>/models.config.",
    required=True)
_MODEL_NAME = flags.DEFINE_string(
    "model_name", None, "Model directory and TF Serving name; defaults to the .keras file "
    "name without its extension.")
_KEEP_VERSIONS = flags.DEFINE_integer(
    "keep_versions", 5, "How many SavedModel versions to keep; older ones are deleted, never "
    "the one just written.", lower_bound=1)
_DATASET = flags.DEFINE_string(
    "dataset", None, "Embedded dataset (selu_zoo.datasets, e.g. digits) whose train split "
    "calibrates int8 and whose validation split verifies the exports. Without it, synthetic "
    "features are used (N(0, 1), or the input Normalization's statistics): parity only, no "
    "accuracy.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "TFDS data directory for --dataset (default: TFDS's own).")
_SERVING_BASE_PATH = flags.DEFINE_string(
    "serving_base_path", None, "export_dir as the model server sees it (e.g. /models in a "
    "container), used in models.config; defaults to export_dir's absolute path.")


def _check_model_path(path):
    if not path.endswith(".keras"):
        raise flags.ValidationError(f"--model_path must be a .keras file, got {path!r}")
    if not os.path.isfile(path):
        raise flags.ValidationError(f"--model_path {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise flags.ValidationError(f"--model_path {path!r} is not a Keras zip archive")
    return True


def _check_export_dir(path):
    if not path:
        raise flags.ValidationError("--export_dir must not be empty")
    if os.path.exists(path) and not os.path.isdir(path):
        raise flags.ValidationError(f"--export_dir {path!r} exists and is not a directory")
    return True


def _check_model_name(name):
    if name is not None:
        from selu_zoo.export import serving

        try:
            serving.validate_model_name(name)
        except ValueError as error:
            raise flags.ValidationError(f"--model_name: {error}") from None
    return True


flags.register_validator(_MODEL_PATH, _check_model_path)
flags.register_validator(_EXPORT_DIR, _check_export_dir)
flags.register_validator(_MODEL_NAME, _check_model_name)


def _fail(message, code=1):
    """Prints one line to stderr and exits."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    sys.exit(code)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        _fail(error, code=2)


def _dataset_arrays(name, data_dir, model):
    """(train, validation) arrays of an embedded dataset, shaped for the model's input."""
    try:
        from selu_zoo import datasets
    except ImportError:
        _fail("--dataset needs selu_zoo.datasets, which this installation lacks")
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        _fail(f"--dataset needs a model with one input, {model.name!r} has {len(inputs)}")
    feature_shape = tuple(inputs[0].shape[1:])
    train = datasets.load_arrays(name, "train", feature_shape=feature_shape, data_dir=data_dir)
    validation = datasets.load_arrays(name, "validation", feature_shape=feature_shape,
                                      data_dir=data_dir)
    return train[0], validation


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}", code=2)
    import keras

    import selu_zoo  # noqa: F401  (registers the layers before loading)
    from selu_zoo.export import pipeline

    model_path = _MODEL_PATH.value
    model_name = _MODEL_NAME.value or os.path.basename(model_path)[:-len(".keras")]
    try:
        from selu_zoo.export import serving

        serving.validate_model_name(model_name)
        model = keras.models.load_model(model_path, safe_mode=True)
        representative, validation = None, None
        if _DATASET.value:
            representative, validation = _dataset_arrays(_DATASET.value, _DATA_DIR.value, model)
        result = pipeline.export_all(
            model, _EXPORT_DIR.value, model_name, representative_data=representative,
            validation_data=validation, keep_versions=_KEEP_VERSIONS.value,
            serving_base_path=_SERVING_BASE_PATH.value)
    except Exception as error:  # noqa: BLE001 - the CLI reports every failure in one line
        _fail(f"{type(error).__name__}: {error}")
    report = result.pop("report_data")
    summary = {**result, "parity": {
        "saved_model_max_abs_diff": report["saved_model"]["max_abs_diff"],
        "tflite": {v: {k: report["tflite"][v][k] for k in ("quality", "vs_keras")}
                   for v in ("float32", "float16", "int8")},
        "int8_float_ops": report["tflite"]["int8"]["float_ops"]}}
    print(json.dumps(summary, indent=2, sort_keys=True))


def run():
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
