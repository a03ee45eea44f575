"""`Regressor`: a backbone followed by a linear prediction in the target's own units."""

import math

import keras
import numpy as np

from selu_zoo.tasks import base


@keras.saving.register_keras_serializable(package="selu_zoo")
class Regressor(base.Task):
    """Predicts one real-valued target.

    The graph is ``backbone(features)``, a float32 ``Dense(1)`` that predicts the
    standardized target, and a fixed ``Rescaling`` named ``"prediction"`` back to the
    target's units (``target_std * y + target_mean``, from the train split), so the head
    starts at the right scale and serving returns targets as they are in the data.
    `compile` defaults to mean squared error, with mean absolute error as the metric.

    Args:
      backbone: a functional ``keras.Model`` from one input (named ``"features"``) to a
        ``(batch, units)`` representation.
      target_mean: mean of the train split's targets.
      target_std: their standard deviation, a positive float.
      **kwargs: ``keras.Model`` arguments (``name``, ...).
    """

    kind = "regressor"

    def __init__(self, backbone, target_mean=0.0, target_std=1.0, **kwargs):
        target_mean, target_std = float(target_mean), float(target_std)
        if not (math.isfinite(target_mean) and math.isfinite(target_std) and target_std > 0):
            raise ValueError(f"need a finite target_mean and a finite target_std > 0, got "
                             f"{target_mean!r}, {target_std!r}")
        inputs = base.single_input(backbone)
        # === Layers ===
        self.backbone = backbone
        self.standardized_prediction = keras.layers.Dense(
            1, kernel_initializer="lecun_normal", dtype="float32",
            name="standardized_prediction")
        self.prediction = keras.layers.Rescaling(target_std, offset=target_mean,
                                                 dtype="float32", name="prediction")
        # === Functional model ===
        outputs = self.prediction(self.standardized_prediction(backbone(inputs)))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.target_mean, self.target_std = target_mean, target_std

    def default_loss(self):
        return keras.losses.MeanSquaredError()

    def default_metrics(self):
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def serving_endpoints(self):
        from selu_zoo.tasks import endpoints  # noqa: PLC0415  (TensorFlow, for exports)

        spec = endpoints.input_spec(self.inputs[0], "features")

        def predict(features):
            return {"prediction": endpoints.as_float32(self(features, training=False))}

        return (endpoints.Endpoint(endpoints.SERVING_DEFAULT, predict, (spec,)),)

    def artifact_metrics(self, features, labels, run, seed=0):
        del seed
        if labels is None:
            return {}
        prediction = run(base.SERVING_DEFAULT, {"features": features})["prediction"]
        error = prediction.reshape(-1).astype(np.float64) - np.asarray(
            labels, np.float64).reshape(-1)
        return {"mse": float(np.mean(error ** 2)), "mae": float(np.mean(np.abs(error)))}

    def get_config(self):
        return {**super().get_config(), "target_mean": self.target_mean,
                "target_std": self.target_std}

