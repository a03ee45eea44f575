"""The ``.keras`` file: the model with its optimizer state, to continue training from."""

import keras
import numpy as np

from selu_zoo import storage, tasks
from selu_zoo.export import verification
from selu_zoo.export.formats import base


def verify_keras_file(model, path, data=None):
    """Loads a ``.keras`` file with ``safe_mode=True`` and checks it against ``model``: the same
    class, equal weights and optimizer variables, and equal default-endpoint outputs on ``data``
    (an `evaluation.ExportData`).

    Returns:
      ``{"optimizer_variables": count compared, "max_abs_diff": {output: diff} or None}``.

    Raises:
      verification.ExportVerificationError: on any difference.
    """
    loaded = keras.models.load_model(path, safe_mode=True)
    problems = []

    def compare_variables(what, mine, theirs):
        if len(mine) != len(theirs):
            problems.append(f"{what}: {len(theirs)} variables loaded, {len(mine)} saved")
            return
        for a, b in zip(mine, theirs):
            if not np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)):
                problems.append(f"{what}: variable {a.path} differs after loading")

    compare_variables("weights", model.weights, loaded.weights)
    optimizer_variables = 0
    if getattr(model, "optimizer", None) is not None:
        if getattr(loaded, "optimizer", None) is None:
            problems.append("the optimizer was not restored")
        elif model.optimizer.built:
            optimizer_variables = len(model.optimizer.variables)
            compare_variables("optimizer", model.optimizer.variables, loaded.optimizer.variables)
    if type(loaded) is not type(model):
        problems.append(f"it loads as {type(loaded).__name__}, not {type(model).__name__}")
    max_abs_diff = None
    if data is not None:
        mine = tasks.serving_endpoints(model)[0](data.features)
        theirs = tasks.serving_endpoints(loaded)[0](data.features)
        max_abs_diff = {k: float(np.max(np.abs(mine[k] - theirs[k]))) for k in mine}
        if any(v != 0 for v in max_abs_diff.values()):
            problems.append(f"outputs differ after loading: {max_abs_diff}")
    if problems:
        raise verification.ExportVerificationError(f"{path} does not restore the model: "
                                                   + "; ".join(problems))
    return {"optimizer_variables": optimizer_variables, "max_abs_diff": max_abs_diff}


class KerasFile(base.Exporter):
    """``model.save`` to ``<model_name>.keras``, reloaded with ``safe_mode=True`` and compared
    (`verify_keras_file`); its entry joins the Keras model's metrics."""

    name = "keras"
    report_key = "keras"

    def file_names(self, model_name, signatures):
        return {"keras": f"{model_name}.keras"}

    def write(self, context):
        path = storage.join(context.extras, context.names["keras"])
        with storage.reported("write", path):
            context.model.save(path)
        return path

    def verify(self, context, written):
        return verify_keras_file(context.model, written, context.validation)
