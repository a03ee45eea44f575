"""`export_all`: SavedModel version, ``.keras`` and TFLite files, verified, published at once."""

import json
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from selu_zoo.export import evaluation
from selu_zoo.export import graph_check
from selu_zoo.export import serving
from selu_zoo.export import signatures as sig
from selu_zoo.export import tflite

DEFAULT_KEEP_VERSIONS = 5
# Float32 outputs (SavedModel, TFLite) must match Keras within this, times max(1, max |output|).
DEFAULT_FLOAT32_TOLERANCE = 1e-5


class ExportVerificationError(RuntimeError):
    """An exported artifact does not reproduce the Keras model."""


# --- .keras --------------------------------------------------------------------------------


def _save_keras(model, path):
    if getattr(model, "optimizer", None) is None:
        logging.warning("%s is not compiled: the .keras file has no optimizer state",
                        model.name)
    model.save(path)


def verify_keras_file(model, path, data=None):
    """Loads a ``.keras`` file with ``safe_mode=True`` and checks it against ``model``.

    Checks that the weights and the optimizer variables (iterations, moments, ...) are equal,
    and that the default endpoint gives the same outputs on ``data`` (an `ExportData`).

    Returns:
      A report dict.

    Raises:
      ExportVerificationError: on any difference.
    """
    loaded = keras.models.load_model(path, safe_mode=True)
    problems = []

    def compare_variables(what, mine, theirs):
        if len(mine) != len(theirs):
            problems.append(f"{what}: {len(theirs)} variables loaded, {len(mine)} saved")
            return
        for a, b in zip(mine, theirs):
            if not np.array_equal(keras.ops.convert_to_numpy(a),
                                  keras.ops.convert_to_numpy(b)):
                problems.append(f"{what}: variable {a.path} differs after loading")

    compare_variables("weights", model.weights, loaded.weights)
    optimizer_variables = 0
    if getattr(model, "optimizer", None) is not None:
        if getattr(loaded, "optimizer", None) is None:
            problems.append("the optimizer was not restored")
        elif getattr(model.optimizer, "built", True):
            optimizer_variables = len(model.optimizer.variables)
            compare_variables("optimizer", model.optimizer.variables, loaded.optimizer.variables)
        # else: never trained, so no slots to save; Keras builds fresh ones when loading.
    max_abs_diff = None
    if data is not None:
        mine = sig.describe(model).default.reference(data.features)
        theirs = sig.describe(loaded).default.reference(data.features)
        max_abs_diff = {k: float(np.max(np.abs(mine[k] - theirs[k]))) for k in mine}
        if any(v != 0 for v in max_abs_diff.values()):
            problems.append(f"outputs differ after loading: {max_abs_diff}")
    if problems:
        raise ExportVerificationError(f"{path} does not restore the model: " + "; ".join(problems))
    return {"optimizer_variables": optimizer_variables, "max_abs_diff": max_abs_diff}


def export_keras(model, path, *, verify=True):
    """Saves ``model`` (with its optimizer state) to a ``.keras`` file atomically.

    The file is written to a temporary sibling, checked with `verify_keras_file` (loads with
    ``safe_mode=True``: every custom class must be a registered selu_zoo class), then
    ``os.replace``d over ``path``. Load it after ``import selu_zoo``.

    Args:
      model: a Keras model.
      path: destination ending in ``.keras``.
      verify: whether to reload and compare before replacing.

    Returns:
      ``path``.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"a Keras model file must end in .keras, got {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f"{serving.TEMP_PREFIX}keras-{os.getpid()}-",
                                suffix=".keras", dir=directory)
    os.close(fd)
    try:
        _save_keras(model, temp)
        if verify:
            verify_keras_file(model, temp)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    return path


# --- Verification helpers --------------------------------------------------------------------


def _check_parity(what, outputs, reference, tolerance):
    """Raises if any output differs from the reference by more than tolerance * scale."""
    diffs = evaluation.max_abs_diffs(outputs, reference)
    failures = []
    for key, per_output in diffs.items():
        for name, diff in per_output.items():
            scale = max(1.0, float(np.max(np.abs(reference[key][name]))))
            if not diff <= tolerance * scale:  # also catches NaN
                failures.append(f"{key}/{name}: max abs diff {diff:.3g} > {tolerance * scale:.3g}")
    if failures:
        raise ExportVerificationError(f"{what} does not match the Keras model: "
                                      + "; ".join(failures))
    return diffs


def saved_model_outputs(saved_model_dir, inputs_by_endpoint):
    """Loads a SavedModel and runs each signature; returns endpoint -> {output: array}."""
    loaded = tf.saved_model.load(saved_model_dir)
    outputs = {}
    for key, inputs in inputs_by_endpoint.items():
        function = loaded.signatures[key]
        result = function(**{k: tf.constant(v) for k, v in inputs.items()})
        outputs[key] = {k: v.numpy() for k, v in result.items()}
    return outputs


def _reference_outputs(signatures, inputs_by_endpoint):
    return {e.name: e.reference(inputs_by_endpoint[e.name]) for e in signatures.endpoints}


def _delta(metrics, baseline):
    return {k: metrics[k] - baseline[k] for k in metrics if k in baseline}


# --- TFLite ----------------------------------------------------------------------------------


def _all_layers(parent):
    for layer in getattr(parent, "layers", ()):
        yield layer
        yield from _all_layers(layer)


def _float32_policies(config):
    """A serialized model with every mixed-precision dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and str(
                config.get("config", {}).get("name", "")).startswith("mixed_"):
            return "float32"
        return {k: _float32_policies(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_policies(v) for v in config]
    return config


def float32_twin(model):
    """``model`` if every layer computes in float32, else a float32 copy with its weights.

    TFLite has no bfloat16 kernels and converts float16 math only as weights, so a model
    built under a mixed-precision policy (``mixed_bfloat16``, ``mixed_float16``; its
    variables are float32 already) is converted through a twin whose layers compute in
    float32. The twin has its own variables, holding the same values.
    """
    if all(layer.compute_dtype == "float32" for layer in _all_layers(model)):
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)
    twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    return twin


def export_tflite(model, scratch_dir, *, signatures, validation, representative,
                  reference, float32_tolerance, seed=0):
    """Converts the model to the three TFLite variants, runs and evaluates them.

    Args:
      model: the Keras model.
      scratch_dir: an empty directory for the lowering SavedModel.
      signatures: its `ModelSignatures`.
      validation: an `ExportData` for verification.
      representative: an `ExportData` for int8 calibration.
      reference: Keras outputs on ``validation`` (endpoint -> {output: array}).
      float32_tolerance: see `DEFAULT_FLOAT32_TOLERANCE`.
      seed: seed of the noise given to ``sample`` endpoints.

    Returns:
      ``(contents, report)``: variant -> flatbuffer bytes, and the TFLite report dict.
    """
    lowered_dir = os.path.join(scratch_dir, "saved_model")
    keys = [e.name for e in signatures.endpoints]
    inputs = evaluation.signature_inputs(signatures, validation, seed)
    calibration = evaluation.representative_dataset(
        evaluation.signature_inputs(signatures, representative, seed))
    report = {"keras": evaluation.quality(signatures, validation, reference)}
    twin = float32_twin(model)
    float32_reference = reference
    if twin is not model:  # mixed precision: float32 TFLite must match the float32 twin
        twin_signatures = sig.describe(twin)
        float32_reference = _reference_outputs(twin_signatures, inputs)
        report["float32_twin"] = {
            "quality": evaluation.quality(twin_signatures, validation, float32_reference),
            "vs_keras": evaluation.compare(signatures, float32_reference, reference)}
        signatures = twin_signatures
    serving.write_saved_model(twin, lowered_dir, signatures=signatures, tflite_lowering=True)
    contents, outputs = {}, {}
    for variant in tflite.VARIANTS:
        float_nodes, float_op_types = [], []
        if variant == "int8":
            float_nodes, has_normalization = standardization_nodes(twin, contents["float32"])
            if has_normalization and not float_nodes:
                logging.warning("int8: Normalization layer ops not found by name; leaving "
                                "every SUB and MUL in float32 instead")
                float_op_types = ["SUB", "MUL"]
        content = tflite.convert(lowered_dir, keys, variant,
                                 calibration if variant == "int8" else None,
                                 float_nodes=float_nodes, float_op_types=float_op_types)
        interpreter = tflite.make_interpreter(content)
        outputs[variant] = {k: tflite.run_signature(interpreter, k, inputs[k]) for k in keys}
        summary = tflite.op_summary(content)
        if variant == "float32" and "EXP" in summary["ops"]:
            logging.warning("the TFLite model has EXP ops: Keras' own 'selu' lowers to "
                            "EXP - 1, which returns 0 for -1e-8; selu_zoo's SELU lowers to ELU")
        entry = {"size_bytes": len(content), "ops": summary["ops"],
                 "quality": evaluation.quality(signatures, validation, outputs[variant]),
                 "vs_keras": evaluation.compare(signatures, outputs[variant],
                                                reference)}
        if variant == "float32":
            _check_parity("the float32 TFLite model", outputs[variant], float32_reference,
                          float32_tolerance)
        else:
            entry["vs_float32"] = evaluation.compare(signatures, outputs[variant],
                                                     outputs["float32"])
            entry["quality_delta_vs_float32"] = _delta(entry["quality"],
                                                       report["float32"]["quality"])
        if variant == "int8":
            entry["float_ops"] = summary["float_ops"]
            entry["kept_float"] = {"nodes": float_nodes, "op_types": float_op_types}
        contents[variant] = content
        report[variant] = entry
    shutil.rmtree(lowered_dir, ignore_errors=True)
    return contents, report


def standardization_nodes(model, content):
    """Tensor names, in a float TFLite model of ``model``, of its ``Normalization`` layers.

    The zoo's models standardize raw features inside the model. Quantized to int8, that goes
    wrong twice: the input QUANTIZE has one scale for all raw features (breast_cancer's range
    from 0.001 to 4000, so most become 0), and so has the MUL by ``1 / std`` (a zero variance
    makes it 1e7, which zeroes every other feature). Measured: the zoo's snn on breast_cancer
    fell from 0.956 to 0.377 accuracy in int8; with these ops left in float32, 0.956. The
    names are matched by the layers' name scopes.

    Returns:
      ``(nodes, has_normalization)``: the tensor names (sorted), and whether the model has a
      Normalization layer at all.
    """
    names = {layer.name for layer in _all_layers(model)
             if isinstance(layer, keras.layers.Normalization)}
    if not names:
        return [], False
    scope = re.compile("(" + "|".join(map(re.escape, sorted(names))) + r")(_\d+)?\Z")
    nodes = sorted({name for name in tflite.tensor_names(content)
                    if any(scope.match(part) for fused in name.split(";")
                           for part in fused.split("/"))})
    return nodes, True


def input_statistics(model, signatures):
    """Per-input ``(mean, std)`` from a ``Normalization`` layer applied to a model input.

    Synthetic verification data (no data given) is drawn from these, so a model that
    standardizes raw features by itself sees raw-looking features, not N(0, 1).

    Returns:
      input name -> (mean, std) arrays of one example's shape; empty if none is found.
    """
    specs = signatures.default.input_signature
    if len(specs) != 1:
        return {}
    shape = tuple(specs[0].shape)[1:]
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Normalization) and getattr(
                layer, "mean", None) is not None:
            try:
                if tuple(layer.input.shape)[1:] != shape:
                    continue
                mean = np.broadcast_to(keras.ops.convert_to_numpy(layer.mean)[0], shape)
                std = np.broadcast_to(np.sqrt(keras.ops.convert_to_numpy(layer.variance)[0]),
                                      shape)
            except (AttributeError, ValueError, IndexError):
                continue
            return {specs[0].name: (mean, std)}
    return {}


# --- Everything ------------------------------------------------------------------------------


def artifact_names(model_name):
    """File names written next to the versions: ``.keras``, TFLite variants, report."""
    names = {"keras": f"{model_name}.keras", "report": f"{model_name}.report.json"}
    names.update({f"tflite_{v}": model_name + suffix for v, suffix in tflite.FILE_SUFFIXES.items()})
    return names


def export_all(model, export_dir, model_name, *, representative_data, validation_data,
               keep_versions=DEFAULT_KEEP_VERSIONS, serving_base_path=None,
               float32_tolerance=DEFAULT_FLOAT32_TOLERANCE, max_validation_examples=2000,
               max_representative_examples=200, seed=0):
    """Exports a model for serving, for devices and for more training, verified, at once.

    Writes::

        <export_dir>/<model_name>/<version>/           SavedModel for TF Serving (next integer)
        <export_dir>/<model_name>/<model_name>.keras    model + optimizer state
        <export_dir>/<model_name>/<model_name>.tflite   float32, builtin ops only
        <export_dir>/<model_name>/<model_name>.f16.tflite, .int8.tflite
        <export_dir>/<model_name>/<model_name>.report.json
        <export_dir>/models.config                      TF Serving --model_config_file

    Every artifact is built and verified in a staging directory first: the SavedModel passes
    `check_serving_graph` and matches Keras after loading; the ``.keras`` file reloads with
    ``safe_mode=True`` to the same weights, optimizer state and outputs; the float32 TFLite
    model matches Keras; float16 and int8 are measured against float32 (see the report).
    Then everything is published together (`serving.VersionTransaction`); if any step
    fails, nothing new is left behind and earlier versions are untouched. Finally all but
    the newest ``keep_versions`` versions are deleted (never the new one).

    Args:
      model: a built functional Keras model following the zoo's contract (named inputs,
        ``"logits"`` / ``"prediction"`` output layers, or a VAE's ``"encoder"`` and
        ``"decoder"``; see `selu_zoo.export.signatures`).
      export_dir: the serving base directory.
      model_name: the model's directory and TF Serving name.
      representative_data: int8 calibration examples, from the training data: anything
        `evaluation.prepare` takes. None uses the validation examples.
      validation_data: held-out examples, with labels or targets for accuracy / MSE: anything
        `evaluation.prepare` takes. None draws synthetic features (parity only; logged) from
        N(0, 1), or from the statistics of a Normalization layer on the input
        (`input_statistics`).
      keep_versions: how many versions to keep (None: all).
      serving_base_path: ``export_dir`` as the server sees it, for ``models.config``.
      float32_tolerance: allowed max abs difference of float32 artifacts, relative to
        ``max(1, max |output|)``.
      max_validation_examples, max_representative_examples: caps on the examples used.
      seed: seed of synthetic features and of the noise given to ``sample``.

    Returns:
      A dict: ``version``, ``saved_model`` (the version's directory), ``keras``,
      ``tflite`` (variant -> path), ``report`` (path), ``models_config`` (path), ``pruned``
      (versions deleted) and ``report_data`` (the report's content).

    Raises:
      ValueError: for bad arguments, data that does not fit the model, or a model outside
        the contract.
      graph_check.ServingGraphError: if stock TF Serving could not run the SavedModel.
      tflite.TFLiteConversionError: if the model needs non-builtin TFLite ops.
      ExportVerificationError: if an artifact does not reproduce the model.
    """
    serving.validate_model_name(model_name)
    serving.validate_keep_versions(keep_versions)
    signatures = sig.describe(model)
    validation = evaluation.prepare(validation_data, signatures, max_validation_examples, seed,
                                    synthetic_stats=input_statistics(model, signatures))
    if validation.synthetic:
        logging.warning("no validation data: verifying %s on synthetic features (N(0, 1), or "
                        "the input Normalization's mean and variance)", model_name)
    if representative_data is None:
        logging.warning("no representative data: calibrating int8 on the validation features")
        representative = evaluation.ExportData(
            {k: v[:max_representative_examples] for k, v in validation.features.items()}, None,
            validation.synthetic)
    else:
        representative = evaluation.prepare(representative_data, signatures,
                                            max_representative_examples, seed)
    inputs = evaluation.signature_inputs(signatures, validation, seed)
    reference = _reference_outputs(signatures, inputs)
    names = artifact_names(model_name)

    with serving.VersionTransaction(export_dir, model_name) as transaction:
        report = {
            "model_name": model_name, "version": transaction.version, "kind": signatures.kind,
            "likelihood": signatures.likelihood, "signatures": signatures.signature_names,
            "data": {"validation_examples": len(validation),
                     "representative_examples": len(representative),
                     "synthetic": validation.synthetic,
                     "labels": validation.labels is not None},
            "float32_tolerance": float32_tolerance,
        }
        logging.info("exporting %s version %d", model_name, transaction.version)
        serving.write_saved_model(model, transaction.saved_model_dir, signatures=signatures)
        graph_check.check_serving_graph(transaction.saved_model_dir)
        served = saved_model_outputs(transaction.saved_model_dir, inputs)
        report["saved_model"] = {"max_abs_diff": _check_parity(
            "the SavedModel", served, reference, float32_tolerance)}

        keras_path = transaction.stage_file(names["keras"])
        _save_keras(model, keras_path)
        report["keras"] = verify_keras_file(model, keras_path, validation)

        contents, report["tflite"] = export_tflite(
            model, transaction.scratch_dir("tflite"), signatures=signatures,
            validation=validation, representative=representative, reference=reference,
            float32_tolerance=float32_tolerance, seed=seed)
        for variant, content in contents.items():
            with open(transaction.stage_file(names[f"tflite_{variant}"]), "wb") as f:
                f.write(content)
            report["tflite"][variant]["file"] = names[f"tflite_{variant}"]
        with open(transaction.stage_file(names["report"]), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
            f.write("\n")
        version_dir = transaction.commit(serving_base_path)

    try:  # the export is complete; failing to delete old versions must not undo that
        pruned = serving.prune_versions(transaction.model_dir, keep_versions,
                                        protect=[transaction.version])
    except OSError as error:
        logging.warning("could not prune old versions of %s: %s", model_name, error)
        pruned = []
    model_dir = transaction.model_dir
    result = {
        "version": transaction.version,
        "saved_model": version_dir,
        "keras": os.path.join(model_dir, names["keras"]),
        "tflite": {v: os.path.join(model_dir, names[f"tflite_{v}"]) for v in tflite.VARIANTS},
        "report": os.path.join(model_dir, names["report"]),
        "models_config": os.path.join(transaction.export_dir, serving.MODELS_CONFIG),
        "pruned": pruned,
        "report_data": report,
    }
    logging.info("exported %s version %d to %s", model_name, transaction.version, model_dir)
    return result
