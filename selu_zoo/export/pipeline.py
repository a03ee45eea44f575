"""`export_all`: one complete, verified artifact set per model version, published at once.

Every version folder holds everything (`selu_zoo.export.publish` has the layout)::

    <export_dir>/<model_name>/<version>/saved_model.pb, variables/   for TF Serving
    <export_dir>/<model_name>/<version>/assets.extra/
        <model_name>.keras                model + optimizer state (continue training here)
        <model_name>.tflite               float32, builtin ops only
        <model_name>.f16.tflite           float16 weights
        <model_name>.int8.tflite          int8 (standardization kept in float32)
        <model_name>.<signature>.onnx     ONNX, one per signature (with the onnx extra)
        report.json                       what was checked, and each artifact's metrics
        tf_serving_warmup_requests        a few real requests TF Serving replays at load
    <export_dir>/models.config            this model's entry merged in

The endpoints and metrics come from the model itself (`selu_zoo.tasks.serving_endpoints`,
`selu_zoo.tasks.Task.artifact_metrics`): the same code exports a classifier, a regressor, a
VAE or any plain Keras model (one ``serving_default`` endpoint).
"""

import dataclasses
import importlib.util
import os
import tempfile

import keras
import numpy as np
from absl import logging

from selu_zoo import ops, storage, tasks
from selu_zoo.export import (evaluation, graph_check, onnx_files, publish, serving, tflite,
                             tflite_files, verification, warmup)

DEFAULT_FLOAT32_TOLERANCE = 1e-5
REPORT_FILE = "report.json"
# Examples per endpoint recorded as TF Serving warmup requests.
WARMUP_EXAMPLES = 4


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export_all` published.

    Attributes:
      version: the new version number.
      version_dir: its folder, ``<export_dir>/<model_name>/<version>``.
      files: artifact -> path (``saved_model`` is the version folder; ``keras``,
        ``tflite_float32``, ``tflite_float16``, ``tflite_int8``, ``report`` and
        ``warmup_requests`` lie in its ``assets.extra``), plus ``models_config``.
      pruned: older versions deleted afterwards.
      report: the content of ``report.json``.
    """

    version: int
    version_dir: str
    files: dict
    pruned: tuple
    report: dict


# Formats beside the SavedModel and its warmup requests (always written): name -> the
# modules it needs and how to install them.
OPTIONAL_FORMATS = {"keras": ((), ""), "tflite": ((), ""),  # TensorFlow converts and checks
                    "onnx": (onnx_files.REQUIREMENTS, onnx_files.INSTALL)}


def available_formats():
    """``(formats whose dependencies are installed, {missing format: install command})``."""
    present, missing = [], {}
    for name, (modules, install) in OPTIONAL_FORMATS.items():
        if all(importlib.util.find_spec(m) is not None for m in modules):
            present.append(name)
        else:
            missing[name] = install
    return tuple(present), missing


def artifact_names(model_name, formats=tuple(OPTIONAL_FORMATS), signatures=()):
    """File names inside a version's ``assets.extra``, for the given formats (and, for ONNX,
    signatures)."""
    names = {"report": REPORT_FILE, "warmup_requests": warmup.WARMUP_FILE}
    if "keras" in formats:
        names["keras"] = f"{model_name}.keras"
    if "tflite" in formats:
        names.update({f"tflite_{v}": model_name + suffix
                      for v, suffix in tflite.FILE_SUFFIXES.items()})
    if "onnx" in formats:
        names.update({f"onnx_{s}": onnx_files.file_name(model_name, s) for s in signatures})
    return names


def _write_onnx(model, model_name, staging, extras, names, endpoints, inputs, served,
                tolerance, serving_form):
    """Converts the served SavedModel's signatures to ONNX in ``extras``; returns the report
    entry (opset, files, parity against the SavedModel, Selu nodes checked).

    A mixed-precision model is converted from the SavedModel of its float32 twin (as TFLite
    is: ONNX Runtime has no mixed bfloat16 kernels) and checked against that.
    """
    signatures = [e.name for e in endpoints]
    inputs = {s: inputs[s] for s in signatures}
    twin = tflite_files.float32_twin(model)
    with tempfile.TemporaryDirectory() as local:
        source = staging
        if twin is not model or not storage.is_local(staging):  # the converter is another
            source = os.path.join(local, "saved_model")          # process: a local copy
            serving.write_saved_model(twin, source, endpoints=tasks.serving_endpoints(twin),
                                      serving_form=serving_form)
            served = verification.outputs_of(verification.saved_model_runner(source), inputs)
        paths = onnx_files.convert(source, local, model_name, signatures)
        selu_nodes = {s: onnx_files.check_selu_constants(p) for s, p in paths.items()}
        outputs = verification.outputs_of(onnx_files.runner(paths), inputs)
        parity = verification.check_parity("the ONNX files", outputs,
                                           {s: served[s] for s in signatures}, tolerance)
        for signature, path in paths.items():
            with open(path, "rb") as f:
                storage.atomic_write(storage.join(extras, names[f"onnx_{signature}"]), f.read())
    return {"opset": onnx_files.OPSET, "max_abs_diff": parity, "selu_nodes": selu_nodes,
            "files": {s: names[f"onnx_{s}"] for s in signatures},
            "source": "saved_model" if twin is model else "float32 twin"}


def _all_layers(parent):
    for layer in getattr(parent, "layers", ()):
        yield layer
        yield from _all_layers(layer)


def input_statistics(model, specs):
    """Per-input ``(mean, std)`` of a ``Normalization`` layer on the model's only input.

    Synthetic verification data (no data given) is drawn from these, so a model that
    standardizes raw features by itself sees raw-looking features, not N(0, 1).

    Returns:
      input name -> (mean, std) arrays of one example's shape; empty if none is found.
    """
    if len(specs) != 1:
        return {}
    shape = tuple(specs[0].shape)[1:]
    for layer in _all_layers(model):
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

    Every artifact is built and checked in a hidden staging folder, then the whole set is
    published as the next version (`selu_zoo.export.publish.publish`): the SavedModel passes
    `check_serving_graph` and matches Keras after loading; the ``.keras`` file reloads with
    ``safe_mode=True`` to the same class, weights, optimizer state and outputs; the float32
    TFLite file matches Keras; float16 and int8 are measured against float32; the warmup
    requests are the SavedModel's own answers. If any step fails, nothing is published.

    Args:
      model: a built Keras model: a `selu_zoo.tasks.Task`, or any model (exported with one
        generic ``serving_default`` endpoint).
      export_dir: the serving base folder (any tf.io.gfile path).
      model_name: the model's folder and TF Serving name.
      representative_data: int8 calibration examples from the training data (see
        `evaluation.prepare`); None uses the validation examples.
      validation_data: held-out examples, with labels or targets for the task's metrics
        (see `evaluation.prepare`); None draws synthetic features (parity only).
      keep_versions: how many versions to keep (None: all).
      serving_base_path: ``export_dir`` as the server sees it, for ``models.config``.
      float32_tolerance: allowed max abs difference of float32 artifacts, relative to
        ``max(1, max |output|)``.
      max_validation_examples, max_representative_examples: caps on the examples used.
      seed: seed of synthetic features, of random endpoint inputs and of the task's metrics.
      serving_form: how the SavedModel computes SELU (`selu_zoo.ops.SERVING_FORMS`):
        ``"fused"`` (TensorFlow's Selu kernel: stock Keras serving speed) or ``"exact"``.
      formats: the `OPTIONAL_FORMATS` to write beside the SavedModel and its warmup
        requests; None: every one whose dependencies are installed (`available_formats`).
      signature_changes: the differences from the newest published version's signatures
        that the caller allowed (`selu_zoo.export.contract`), recorded in the report.

    Returns:
      An `ExportResult`.

    Raises:
      ValueError: for bad arguments or data that does not fit the model.
      graph_check.ServingGraphError: if stock TF Serving could not run the SavedModel.
      tflite.TFLiteConversionError: if the model needs non-builtin TFLite ops.
      verification.ExportVerificationError: if an artifact does not reproduce the model.
      storage.StorageError: if the export folder cannot be written.
    """
    publish.validate_model_name(model_name)
    formats = available_formats()[0] if formats is None else tuple(formats)
    unknown = sorted(set(formats) - set(OPTIONAL_FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose from "
                         f"{', '.join(OPTIONAL_FORMATS)}")
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
        extras = publish.extras_dir(staging)
        serving.write_saved_model(model, staging, endpoints=endpoints,
                                  serving_form=serving_form)
        graph_check.check_serving_graph(staging)
        served_run = verification.saved_model_runner(staging)
        served = verification.outputs_of(served_run, inputs)
        report["saved_model"] = {
            "max_abs_diff": verification.check_parity("the SavedModel", served, reference,
                                                      float32_tolerance),
            "metrics": verification.artifact_metrics(model, validation, served_run, seed),
            "non_finite_inputs": verification.non_finite_behaviour(served_run, endpoints[0])}
        storage.makedirs(extras)
        if "keras" in formats:
            keras_path = storage.join(extras, names["keras"])
            with storage.reported("write", keras_path):
                model.save(keras_path)
            report["keras"].update(verification.verify_keras_file(model, keras_path,
                                                                  validation))
        if "tflite" in formats:
            contents, report["tflite"] = tflite_files.convert_variants(
                model, inputs=inputs, validation=validation,
                representative_inputs=calibration, reference=reference,
                float32_tolerance=float32_tolerance, seed=seed)
            for variant, content in contents.items():
                storage.atomic_write(storage.join(extras, names[f"tflite_{variant}"]), content)
                report["tflite"][variant]["file"] = names[f"tflite_{variant}"]
        if "onnx" in formats:
            report["onnx"] = _write_onnx(model, model_name, staging, extras, names, endpoints,
                                         inputs, served, float32_tolerance, serving_form)
        requests = _head(inputs, WARMUP_EXAMPLES)
        if endpoints[0].name != tasks.SERVING_DEFAULT:  # its alias is a signature too
            requests[tasks.SERVING_DEFAULT] = requests[endpoints[0].name]
        warmup.write_warmup_requests(
            storage.join(extras, names["warmup_requests"]), model_name,
            [(name, batch, served_run(name, batch)) for name, batch in requests.items()])
        storage.write_json(storage.join(extras, names["report"]), report)

    logging.info("exporting %s to %s", model_name, export_dir)
    published = publish.publish(export_dir, model_name, write_version,
                                serving_base_path=serving_base_path, keep_versions=keep_versions)
    extras = publish.extras_dir(published.version_dir)
    files = {"saved_model": published.version_dir,
             **{kind: storage.join(extras, name) for kind, name in names.items()},
             "models_config": published.models_config}
    return ExportResult(published.version, published.version_dir, files,
                        tuple(published.pruned), report)
