"""When a selu_zoo layer counts as built: Keras' rule for stateless layers."""

import keras


def mark_built_if_stateless(layer):
    """Marks ``layer`` built, as Keras marks its stateless layers, unless ``build`` is overridden.

    Keras' stateless layers (``Activation``, ``AlphaDropout``, ...) are built as soon as they
    are constructed; a subclass that overrides ``build`` must not be, or Keras would skip it.
    Call this at the end of ``__init__`` of a layer that creates no weights in ``build``.

    Args:
      layer: the `keras.layers.Layer` being constructed.
    """
    if type(layer).build is keras.layers.Layer.build:
        layer.built = True
