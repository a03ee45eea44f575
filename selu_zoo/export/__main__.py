r"""Exports a ``.keras`` model as the next version (README: "To export a ``.keras`` file").

    python -m selu_zoo.export --model_path=workdir/snn/checkpoints/best.keras \
        --export_dir=saved_models [--model_name=snn] [--keep_versions=5] [--dataset=digits]

Takes the zoo's ``.keras`` files and plain Keras models (one ``serving_default`` endpoint).
Prints a JSON summary on success. Any error prints one line starting with ``error:`` on
stderr and exits non-zero; nothing is published. TensorFlow's C++ and converter output and
INFO lines are hidden (`selu_zoo.console`) unless ``--verbosity`` is given.
"""

import json
import os
import sys
import zipfile

from absl import app
from absl import flags
from absl import logging

from selu_zoo import console
from selu_zoo.export import flags as export_flags

_MODEL_PATH = flags.DEFINE_string(
    "model_path", None, "The .keras file to export (loaded with safe_mode=True after "
    "`import selu_zoo`).", required=True)
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Serving base folder: writes <export_dir>/<model_name>/<version>/ and "
    "merges <export_dir>/models.config.", required=True)
_MODEL_NAME = flags.DEFINE_string(
    "model_name", None, "Model folder and TF Serving name; defaults to the model's own name "
    "(what the zoo's train.py calls --model, e.g. snn), not the file's.")
_DATASET = flags.DEFINE_string(
    "dataset", None, "Dataset (as --config.dataset of train.py) whose train split calibrates "
    "int8 and whose test split verifies the exports. Without it, synthetic features are used "
    "(N(0, 1), or the input Normalization's statistics): parity only, no metrics.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "TFDS data folder for --dataset (default: TFDS's own).")

_EXAMPLES = {"train": 200, "test": 2000}


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


flags.register_validator(_MODEL_PATH, _check_model_path)
flags.register_validator(_EXPORT_DIR, _check_export_dir)


def _fail(message, code=1):
    """Prints one line to stderr and exits."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    sys.stderr.flush()
    sys.exit(code)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        _fail(error, code=2)


def _dataset_examples(name, data_dir, model):
    """``(train rows, test rows)`` of a dataset, shaped for the model's one input."""
    from selu_zoo import datasets  # noqa: PLC0415

    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ValueError(f"--dataset needs a model with one input, {model.name!r} has "
                         f"{len(inputs)}")
    data = datasets.open_dataset(name, data_dir=data_dir,
                                 feature_shape=tuple(inputs[0].shape[1:]))
    return tuple(data.take(split, count) for split, count in _EXAMPLES.items())


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}", code=2)
    if flags.FLAGS["verbosity"].present:
        if console.current() is not None:
            console.current().release()
    else:
        logging.set_verbosity(logging.WARNING)
        console.start()  # started by `import selu_zoo` under python -m; the converter's too
        # The captured text is dropped: the error line carries the converter's message.
        logging.get_absl_handler().python_handler.stream = sys.stderr
    _export()


def _export():
    import keras  # noqa: PLC0415  (after flag parsing: --help stays fast)

    import selu_zoo  # noqa: F401,PLC0415  (registers the layers before loading)
    from selu_zoo.export import contract, pipeline, publish  # noqa: PLC0415

    try:
        model = keras.models.load_model(_MODEL_PATH.value, safe_mode=True)
        model_name = _MODEL_NAME.value or model.name
        publish.validate_model_name(model_name)
        options = export_flags.export_options()
        changes = contract.check_compatible(model, _EXPORT_DIR.value, model_name,
                                            options.pop("allow_signature_change"))
        representative, validation = None, None
        if _DATASET.value:
            representative, validation = _dataset_examples(_DATASET.value, _DATA_DIR.value,
                                                           model)
        result = pipeline.export_all(
            model, _EXPORT_DIR.value, model_name, representative_data=representative,
            validation_data=validation, signature_changes=changes, **options)
    except Exception as error:  # noqa: BLE001 - the CLI reports every failure in one line
        _fail(f"{type(error).__name__}: {error}")
    report = result.report
    print(json.dumps({
        "version": result.version, "files": result.files, "pruned": list(result.pruned),
        "kind": report["kind"], "saved_model": report["saved_model"],
        "tflite": {v: {k: entry[k] for k in ("metrics", "max_abs_diff_vs_keras")}
                   for v, entry in report.get("tflite", {}).items()},
        "onnx": report.get("onnx"),
        "keras_metrics": report["keras"]["metrics"]}, indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
