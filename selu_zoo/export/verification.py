"""Checking exported artifacts against the Keras model, and running each artifact the same way.

A *runner* is ``run(endpoint_name, {input name: array}) -> {output name: array}``, of the
model's endpoints, a SavedModel's or a TFLite file's signatures; tasks score artifacts
through runners (`selu_zoo.tasks.Task.artifact_metrics`).
"""

import numpy as np
import tensorflow as tf

from selu_zoo import tasks
from selu_zoo.export import serving, tflite

# Inputs that every artifact is tried on, to record what it does with them.
NON_FINITE_INPUTS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"),
                     "huge": 3e38}


class ExportVerificationError(RuntimeError):
    """An exported artifact does not reproduce the Keras model."""


def keras_runner(endpoints):
    """A runner of the model's own endpoints (eager Keras calls)."""
    return lambda name, inputs: tasks.endpoints.find(endpoints, name)(inputs)


def saved_model_runner(saved_model_dir):
    """A runner of a SavedModel's signatures, loaded once."""
    loaded = serving.load_saved_model(saved_model_dir)

    def run(name, inputs):
        result = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in result.items()}

    return run


def tflite_runner(content):
    """A runner of a TFLite flatbuffer's signatures (LiteRT's interpreter)."""
    interpreter = tflite.make_interpreter(content)
    return lambda name, inputs: tflite.run_signature(interpreter, name, inputs)


def outputs_of(run, inputs_by_endpoint):
    """``{endpoint: run(endpoint, inputs)}`` for every endpoint's inputs."""
    return {name: run(name, inputs) for name, inputs in inputs_by_endpoint.items()}


def max_abs_diffs(outputs, reference):
    """endpoint -> output name -> max |outputs - reference| (float64 arithmetic)."""
    return {key: {name: float(np.max(np.abs(outputs[key][name].astype(np.float64)
                                            - value.astype(np.float64))))
                  for name, value in per_output.items()}
            for key, per_output in reference.items()}


def check_parity(what, outputs, reference, tolerance):
    """Raises unless every output is within ``tolerance * max(1, max |reference|)``.

    Returns:
      The max absolute differences, ``{endpoint: {output: float}}``.

    Raises:
      ExportVerificationError: naming every output that is off (NaN counts as off).
    """
    diffs = max_abs_diffs(outputs, reference)
    failures = []
    for key, per_output in diffs.items():
        for name, diff in per_output.items():
            bound = tolerance * max(1.0, float(np.max(np.abs(reference[key][name]))))
            if not diff <= bound:
                failures.append(f"{key}/{name}: max abs diff {diff:.3g} > {bound:.3g}")
    if failures:
        raise ExportVerificationError(f"{what} does not match the Keras model: "
                                      + "; ".join(failures))
    return diffs


def artifact_metrics(model, data, run, seed=0):
    """The task's metrics of an artifact on the verification examples ({} for other models)."""
    if not isinstance(model, tasks.Task) or list(data.features) != ["features"]:
        return {}
    return model.artifact_metrics(data.features["features"], data.labels, run, seed)


def non_finite_behaviour(run, endpoint):
    """What an artifact's default `selu_zoo.tasks.Endpoint` returns for `NON_FINITE_INPUTS`.

    Returns:
      ``{input kind: "non-finite outputs" or "finite outputs"}``.
    """
    behaviour = {}
    for kind, value in NON_FINITE_INPUTS.items():
        inputs = {spec.name: np.full((2, *tuple(spec.shape)[1:]), value,
                                     spec.dtype.as_numpy_dtype)
                  for spec in endpoint.input_signature}
        outputs = run(endpoint.name, inputs)
        finite = all(np.all(np.isfinite(v)) for v in outputs.values())
        behaviour[kind] = "finite outputs" if finite else "non-finite outputs"
    return behaviour
