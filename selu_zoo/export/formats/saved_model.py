"""The SavedModel for TF Serving: the version folder itself, always written first."""

import dataclasses

from selu_zoo import storage
from selu_zoo.export import serving, verification
from selu_zoo.export.formats import base


class SavedModel(base.Exporter):
    """`serving.write_saved_model` + `serving.check_serving_graph`, checked against Keras.

    Its report entry: parity, the task's metrics and what it returns for non-finite inputs.
    The following exporters get its runner and outputs (``served_run``, ``served``).
    """

    name = "saved_model"
    optional = False
    report_key = "saved_model"

    def write(self, context):
        serving.write_saved_model(context.model, context.staging, endpoints=context.endpoints,
                                  serving_form=context.serving_form)
        serving.check_serving_graph(context.staging)
        storage.makedirs(context.extras)  # after the SavedModel: its folder must be empty
        run = verification.saved_model_runner(context.staging)
        return run, verification.outputs_of(run, context.inputs)

    def verify(self, context, written):
        run, served = written
        return {"max_abs_diff": verification.check_parity("the SavedModel", served,
                                                          context.reference, context.tolerance),
                "metrics": verification.artifact_metrics(context.model, context.validation, run,
                                                         context.seed),
                "non_finite_inputs": verification.non_finite_behaviour(run,
                                                                       context.endpoints[0])}

    def updated(self, context, written):
        run, served = written
        return dataclasses.replace(context, served_run=run, served=served)
