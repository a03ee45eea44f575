"""The model registry: names -> builders, and compilation with each family's loss.

Usage (what train.py does)::

    model = build_model(config.model, config, info)
    compile_model(model, config)
"""

import keras
from absl import logging

from models import cnn, common, rnn, snn, vae

__all__ = ["MODEL_NAMES", "get_builder", "build_model", "compile_model", "make_optimizer"]

_BUILDERS = {
    "snn": snn.build_snn,
    "snn_vae": vae.build_snn_vae,
    "snn_rnn": rnn.build_snn_rnn,
    "snn_cnn": cnn.build_snn_cnn,
}
MODEL_NAMES = tuple(_BUILDERS)
_OPTIMIZERS = ("adam", "sgd")


def get_builder(name):
    """The builder ``(config, info) -> keras.Model`` registered under ``name``.

    Args:
      name: one of `MODEL_NAMES`.

    Returns:
      The builder function.

    Raises:
      ValueError: for an unknown name; the message lists the registered names.
    """
    try:
        return _BUILDERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; registered models: "
                         f"{', '.join(MODEL_NAMES)}") from None


def build_model(name, config, info):
    """Builds the model ``name`` from its config and the dataset's `DatasetInfo`.

    Layers are created under ``config.mixed_precision`` (a Keras dtype policy name, or None
    for the current global policy); standardization, output heads and the VAE's latent
    layers stay float32.

    Args:
      name: one of `MODEL_NAMES`.
      config: the model's ConfigDict (see ``configs/<name>.py``).
      info: the dataset's `DatasetInfo` (feature shape, task, classes, train mean/variance).

    Returns:
      An uncompiled functional `keras.Model` named ``name``.

    Raises:
      ValueError: for an unknown name or a config/dataset mismatch.
    """
    builder = get_builder(name)
    with common.dtype_policy(config.get("mixed_precision", None)):
        model = builder(config, info)
    logging.info("built %s: %d parameters, input %s", name, model.count_params(),
                 tuple(model.input.shape) if not isinstance(model.input, list) else None)
    return model


def make_optimizer(config):
    """``keras.optimizers.Adam`` or ``SGD`` (with ``config.momentum``) at the config's rate.

    Args:
      config: ConfigDict with ``optimizer`` (``"adam"`` or ``"sgd"``), ``learning_rate`` and
        optionally ``momentum``.

    Returns:
      A Keras optimizer.

    Raises:
      ValueError: for an unknown optimizer name.
    """
    name = config.get("optimizer", "adam")
    rate = float(config.learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.get("momentum", 0.0))
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(_OPTIMIZERS)}")


def _loss_and_metrics(model, config):
    """The family's loss and metrics: -ELBO for the VAE, else from the output layer's name."""
    if (config.get("model", None) or model.name) == "snn_vae":
        return vae.reconstruction_loss(config), []
    output_names = {layer.name for layer in model.layers}
    if "logits" in output_names:
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    if "prediction" in output_names:
        return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")]
    raise ValueError(f"model {model.name!r} has no 'logits' or 'prediction' layer")


def compile_model(model, config):
    """Compiles ``model`` with the config's optimizer and the family's loss and metrics.

    Classifiers: sparse categorical cross-entropy on logits, metric ``"accuracy"``.
    Regressors: mean squared error, metric ``"mae"``. ``snn_vae``: the per-example
    reconstruction loss of ``config.likelihood`` (the KL term comes from the model), so the
    loss is the negative ELBO. ``jit_compile`` is ``config.jit_compile``.

    Args:
      model: a model from `build_model`.
      config: its ConfigDict.

    Returns:
      The same model, compiled.
    """
    loss, metrics = _loss_and_metrics(model, config)
    model.compile(optimizer=make_optimizer(config), loss=loss, metrics=metrics,
                  jit_compile=bool(config.get("jit_compile", False)))
    return model
