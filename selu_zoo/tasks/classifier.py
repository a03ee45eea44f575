"""`Classifier`: a backbone followed by a linear layer of class logits."""

import keras
import numpy as np

from selu_zoo.tasks import base


@keras.saving.register_keras_serializable(package="selu_zoo")
class Classifier(base.Task):
    """Classifies examples into ``num_classes`` classes.

    The graph is ``backbone(features)`` then a float32 ``Dense(num_classes)`` named
    ``"logits"`` (LeCun-normal, like the rest of a self-normalizing network).
    `compile` defaults to sparse categorical cross-entropy on the logits and accuracy.
    Serving returns ``logits`` and ``probabilities`` (softmax); ``label_names[i]`` names
    class ``i``, and travels with the ``.keras`` file and the export report.

    Args:
      backbone: a functional ``keras.Model`` from one input (named ``"features"``) to a
        ``(batch, units)`` representation.
      num_classes: number of classes, at least 2.
      label_names: optional class names, one per class.
      **kwargs: ``keras.Model`` arguments (``name``, ...).
    """

    kind = "classifier"

    def __init__(self, backbone, num_classes, label_names=None, **kwargs):
        num_classes = int(num_classes)
        if num_classes < 2:
            raise ValueError(f"a classifier needs num_classes >= 2, got {num_classes}")
        if label_names is not None:
            label_names = tuple(str(name) for name in label_names)
            if len(label_names) != num_classes:
                raise ValueError(f"label_names has {len(label_names)} names for "
                                 f"{num_classes} classes")
        inputs = base.single_input(backbone)
        # === Layers ===
        self.backbone = backbone
        self.logits = keras.layers.Dense(num_classes, kernel_initializer="lecun_normal",
                                         dtype="float32", name="logits")
        # === Functional model ===
        super().__init__(inputs=inputs, outputs=self.logits(backbone(inputs)), **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.label_names = label_names

    def default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def serving_endpoints(self):
        from selu_zoo.tasks import endpoints  # noqa: PLC0415  (TensorFlow, for exports)

        spec = endpoints.input_spec(self.inputs[0], "features")

        def classify(features):
            logits = endpoints.as_float32(self(features, training=False))
            return {"logits": logits, "probabilities": keras.ops.softmax(logits)}

        return (endpoints.Endpoint(endpoints.SERVING_DEFAULT, classify, (spec,)),)

    def artifact_metrics(self, features, labels, run, seed=0):
        del seed
        if labels is None:
            return {}
        logits = run(base.SERVING_DEFAULT, {"features": features})["logits"]
        return {"accuracy": float(np.mean(np.argmax(logits, axis=-1)
                                          == np.asarray(labels).reshape(-1)))}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "label_names": self.label_names}

