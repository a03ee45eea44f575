"""The ``.keras`` file: the model with its optimizer state, to continue training from."""

from selu_zoo import storage
from selu_zoo.export import verification
from selu_zoo.export.formats import base


class KerasFile(base.Exporter):
    """``model.save`` to ``<model_name>.keras``, reloaded with ``safe_mode=True`` and compared
    (`verification.verify_keras_file`); its entry joins the Keras model's metrics."""

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
        return verification.verify_keras_file(context.model, written, context.validation)
