"""The model registry: the zoo's names and their builders.

Usage (what training.py does)::

    model = build_model(config, info)      # a selu_zoo.tasks.Task
    model.compile(optimizer=..., jit_compile=config.jit_compile)   # the task's loss and metrics
"""

from absl import logging

from models import cnn, common, rnn, snn, vae

__all__ = ["MODEL_NAMES", "get_builder", "build_model"]

_BUILDERS = {
    "snn": snn.build_snn,
    "snn_vae": vae.build_snn_vae,
    "snn_rnn": rnn.build_snn_rnn,
    "snn_cnn": cnn.build_snn_cnn,
}
MODEL_NAMES = tuple(_BUILDERS)


def get_builder(name):
    """The builder ``(config, info) -> Task`` registered under ``name``.

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


def build_model(config, info):
    """Builds the model ``config.model`` for the dataset that ``info`` describes.

    Layers are created under ``config.mixed_precision`` (a Keras dtype policy name, or None
    for the current global policy); standardization, output heads and the VAE's latent
    layers stay float32.

    Args:
      config: the experiment ConfigDict (see ``configs/``).
      info: the dataset's `DatasetInfo` (feature shape, task, classes, train statistics).

    Returns:
      An uncompiled `selu_zoo.tasks.Task`.

    Raises:
      ValueError: for an unknown model or a config that does not fit the dataset.
    """
    builder = get_builder(config.model)
    with common.dtype_policy(config.mixed_precision):
        model = builder(config, info)
    logging.info("built %s (%s): %d parameters, input %s", config.model, model.kind,
                 model.count_params(), tuple(model.inputs[0].shape[1:]))
    return model
