"""`export_all`: one complete, verified artifact set per model version, published at once.

The endpoints and metrics come from the model (`selu_zoo.tasks.serving_endpoints`,
`selu_zoo.tasks.Task.artifact_metrics`); the formats from `selu_zoo.export.formats.EXPORTERS`.
"""

import dataclasses

import keras
import numpy as np
from absl import logging

from selu_zoo import ops, storage, tasks
from selu_zoo.export import evaluation, publish, verification
from selu_zoo.export import formats as registry

DEFAULT_FLOAT32_TOLERANCE = 1e-5
REPORT_FILE = "report.json"


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export_all` published.

    Attributes:
      version, version_dir: the new version and its folder.
      files: artifact -> path: ``saved_model`` (the version folder), ``models_config``, and
        in ``assets.extra`` the files of `artifact_names` (``keras``, ``tflite_<variant>``,
        ``onnx_<signature>``, ``report``, ``warmup_requests``).
      pruned: older versions deleted afterwards.
      report: the content of ``report.json``.
    """

    version: int
    version_dir: str
    files: dict
    pruned: tuple
    report: dict


def _optional():
    return [e for e in registry.EXPORTERS if e.optional]


# Formats beside the SavedModel and its warmup requests (always written): name -> the
# modules it needs and how to install them (`registry.EXPORTERS` as imported).
OPTIONAL_FORMATS = {e.name: (tuple(e.requirements), e.install) for e in _optional()}


def available_formats():
    """``(optional formats whose dependencies are installed, {missing format: install
    command})``, in `registry.EXPORTERS` order.
    """
    present, missing = [], {}
    for exporter in _optional():
        if exporter.available():
            present.append(exporter.name)
        else:
            missing[exporter.name] = exporter.install
    return tuple(present), missing


def artifact_names(model_name, formats=None, signatures=()):
    """File names in a version's ``assets.extra``: the report's and those of the exporters run
    (the optional ones in ``formats``, None: all) for these signatures.
    """
    names = {"report": REPORT_FILE}
    for exporter in _chosen(formats):
        names.update(exporter.file_names(model_name, list(signatures)))
    return names


def _chosen(formats):
    """The exporters to run: the required ones and the optional ones in ``formats`` (None: all)."""
    return [e for e in registry.EXPORTERS
            if not e.optional or formats is None or e.name in formats]


def input_statistics(model, specs):
    """Per-input ``(mean, std)`` of a ``Normalization`` layer on the model's only input, for
    synthetic verification data that looks raw to a model that standardizes by itself.

    Returns:
      input name -> (mean, std) arrays of one example's shape; empty if none is found.
    """
    if len(specs) != 1:
        return {}
    shape = tuple(specs[0].shape)[1:]
    for layer in evaluation.all_layers(model):
        if isinstance(layer, keras.layers.Normalization) and getattr(
                layer, "mean", None) is not None:
            mean = keras.ops.convert_to_numpy(layer.mean)
            if mean.size != int(np.prod(shape)):
                continue
            std = np.sqrt(keras.ops.convert_to_numpy(layer.variance))
            return {specs[0].name: (mean.reshape(shape), std.reshape(shape))}
    return {}


def _head(inputs_by_endpoint, count):
    return {e: {k: v[:count] for k, v in inputs.items()} for e, inputs in
            inputs_by_endpoint.items()}


def export_all(model, export_dir, model_name, *, representative_data=None,
               validation_data=None, keep_versions=publish.DEFAULT_KEEP_VERSIONS,
               serving_base_path=None, float32_tolerance=DEFAULT_FLOAT32_TOLERANCE,
               max_validation_examples=2000, max_representative_examples=200, seed=0,
               serving_form=ops.DEFAULT_SERVING_FORM, formats=None, signature_changes=()):
    """Exports a model for serving, for devices and for more training, verified, at once.

    Each exporter of `selu_zoo.export.formats.EXPORTERS` (in its order) writes its files into
    a hidden staging folder, checks them and returns its ``report.json`` entry; then
    `selu_zoo.export.publish.publish` publishes the set as the next version. If any step
    fails, nothing is published.

    Args:
      model: a built Keras model: a `selu_zoo.tasks.Task`, or any model (exported with one
        generic ``serving_default`` endpoint).
      export_dir: the serving base folder (any tf.io.gfile path).
      model_name: the model's folder and TF Serving name.
      representative_data: int8 calibration examples (`evaluation.prepare`); None uses the
        validation examples.
      validation_data: held-out examples, with labels or targets for the task's metrics
        (`evaluation.prepare`); None draws synthetic features (parity only).
      keep_versions: how many versions to keep (None: all).
      serving_base_path: ``export_dir`` as the server sees it, for ``models.config``.
      float32_tolerance: allowed max abs difference of float32 artifacts, relative to
        ``max(1, max |output|)``.
      max_validation_examples, max_representative_examples: caps on the examples used.
      seed: seed of synthetic features, of random endpoint inputs and of the task's metrics.
      serving_form: how the SavedModel computes SELU (`selu_zoo.ops.SERVING_FORMS`).
      formats: the optional formats (`OPTIONAL_FORMATS`) to write; None: every one whose
        dependencies are installed.
      signature_changes: differences from the newest version's signatures that the caller
        allowed (`selu_zoo.export.contract`), recorded in the report.

    Returns:
      An `ExportResult`.

    Raises:
      ValueError: for bad arguments or data that does not fit the model.
      serving.ServingGraphError: if stock TF Serving could not run the SavedModel.
      tflite.TFLiteConversionError: if the model needs non-builtin TFLite ops.
      verification.ExportVerificationError: if an artifact does not reproduce the model.
      storage.StorageError: if the export folder cannot be written.
    """
    publish.validate_model_name(model_name)
    formats = available_formats()[0] if formats is None else tuple(formats)
    unknown = sorted(set(formats) - {e.name for e in _optional()})
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose from "
                         f"{', '.join(e.name for e in _optional())}")
    endpoints = tasks.serving_endpoints(model)
    specs = endpoints[0].input_signature
    validation = evaluation.prepare(validation_data, specs, max_validation_examples, seed,
                                    synthetic_stats=input_statistics(model, specs))
    if validation.synthetic:
        logging.warning("no validation data: verifying %s on synthetic features", model_name)
    representative = validation if representative_data is None else evaluation.prepare(
        representative_data, specs, max_representative_examples, seed)
    inputs = evaluation.endpoint_inputs(model, endpoints, validation, seed)
    calibration = _head(evaluation.endpoint_inputs(model, endpoints, representative, seed),
                        max_representative_examples)
    keras_run = verification.keras_runner(endpoints)
    reference = verification.outputs_of(keras_run, inputs)
    names = artifact_names(model_name, formats, [e.name for e in endpoints])
    report = {
        "model_name": model_name, "kind": getattr(model, "kind", "generic"),
        "class": type(model).__name__,
        "label_names": getattr(model, "label_names", None),
        "signatures": tasks.endpoints.signature_names(endpoints),
        "data": {"validation_examples": len(validation),
                 "representative_examples": len(representative),
                 "synthetic": validation.synthetic, "labels": validation.labels is not None},
        "float32_tolerance": float32_tolerance, "serving_form": serving_form,
        "formats": ["saved_model", "warmup_requests", *formats],
        "signature_changes": list(signature_changes),
        "keras": {"metrics": verification.artifact_metrics(model, validation, keras_run, seed)},
    }

    def write_version(staging):
        context = registry.ExportContext(
            model=model, model_name=model_name, endpoints=endpoints, inputs=inputs,
            calibration=calibration, validation=validation, reference=reference,
            tolerance=float32_tolerance, serving_form=serving_form, seed=seed,
            staging=staging, extras=publish.extras_dir(staging), names=names)
        for exporter in _chosen(formats):
            written = exporter.write(context)
            entry = exporter.verify(context, written)
            if exporter.report_key is not None and entry is not None:
                report.setdefault(exporter.report_key, {}).update(entry)
            context = exporter.updated(context, written)
        storage.write_json(storage.join(context.extras, names["report"]), report)

    logging.info("exporting %s to %s", model_name, export_dir)
    published = publish.publish(export_dir, model_name, write_version,
                                serving_base_path=serving_base_path, keep_versions=keep_versions)
    extras = publish.extras_dir(published.version_dir)
    files = {"saved_model": published.version_dir,
             **{kind: storage.join(extras, name) for kind, name in names.items()},
             "models_config": published.models_config}
    return ExportResult(published.version, published.version_dir, files,
                        tuple(published.pruned), report)
