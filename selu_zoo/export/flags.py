"""The export flags that ``train.py`` and ``python -m selu_zoo.export`` share, defined once.

Importing this module defines them on ``absl.flags.FLAGS``; `export_options` reads them.
"""

from absl import flags, logging

from selu_zoo import ops
from selu_zoo.export import pipeline

KEEP_VERSIONS = flags.DEFINE_integer(
    "keep_versions", 5, "Versions to keep per model (the newest, and versions models.config "
    "pins, are always kept).", lower_bound=1)
SERVING_BASE_PATH = flags.DEFINE_string(
    "serving_base_path", None, "The export folder as TensorFlow Serving sees it (e.g. /models "
    "in a container), for this model's base_path in models.config. Default: the entry's "
    "current base_path, or the absolute --export_dir for a new entry.")
EXPORT_FORMATS = flags.DEFINE_list(
    "export_formats", None, "Formats to write beside the SavedModel and its warmup requests, "
    f"a comma list of {', '.join(pipeline.OPTIONAL_FORMATS)}. Default: every one "
    "whose dependencies are installed; a missing one is named with its install command.")
flags.register_validator(
    "export_formats", lambda formats: not formats or set(formats) <= set(
        pipeline.OPTIONAL_FORMATS),
    f"--export_formats takes a comma list of {', '.join(pipeline.OPTIONAL_FORMATS)}")
ALLOW_SIGNATURE_CHANGE = flags.DEFINE_bool(
    "allow_signature_change", False, "Publish even if the model's serving signatures "
    "(input names, dtypes, shapes; output names) differ from the newest published version "
    "of that name, which would break its clients; without it that is refused before "
    "training. report.json records the change.")
SERVING_FORM = flags.DEFINE_enum(
    "serving_form", ops.DEFAULT_SERVING_FORM, list(ops.SERVING_FORMS),
    "How the exported SavedModel computes SELU: 'fused' (TensorFlow's Selu kernel, the speed "
    "of stock Keras; under 2e-7 off near 0) or 'exact' (selu_zoo's exact form, 0.6-1.0x "
    "the speed). Training and the .keras and TFLite files are exact either way.")


def export_formats():
    """--export_formats, or every available format; one line names each missing one."""
    present, missing = pipeline.available_formats()
    if EXPORT_FORMATS.value:
        absent = sorted(set(EXPORT_FORMATS.value) & set(missing))
        if absent:
            raise ValueError(f"--export_formats={','.join(EXPORT_FORMATS.value)} needs "
                             + "; ".join(f"{f}: {missing[f]}" for f in absent))
        return tuple(dict.fromkeys(EXPORT_FORMATS.value))
    for name, install in missing.items():
        logging.warning("not exporting %s: its dependencies are missing (%s)", name, install)
    return present


def export_options():
    """The shared flags as keyword arguments of `training.ExportOptions` and
    `selu_zoo.export.export_all` (``formats`` resolved by `export_formats`).

    Raises:
      ValueError: if a format given with --export_formats misses its dependencies.
    """
    return {"keep_versions": KEEP_VERSIONS.value, "serving_base_path": SERVING_BASE_PATH.value,
            "serving_form": SERVING_FORM.value, "formats": export_formats(),
            "allow_signature_change": ALLOW_SIGNATURE_CHANGE.value}
