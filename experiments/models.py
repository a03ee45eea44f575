"""The multilayer perceptrons compared in the experiments, one builder for all variants."""

import dataclasses

import keras

from selu_zoo.layers import SELUDense


@dataclasses.dataclass(frozen=True)
class Variant:
    """How one kind of hidden layer is made.

    Attributes:
      label: name shown in figures and tables.
      activation: ``"selu_dense"`` (`selu_zoo.layers.SELUDense`, fused Dense + SELU,
        alpha dropout) or a Keras activation name (``"relu"``, ``"tanh"``, ``"elu"``)
        used after a ``keras.layers.Dense`` (standard dropout).
      initializer: kernel initializer name.
      norm: None, ``"batch"`` (BatchNormalization) or ``"layer"`` (LayerNormalization),
        placed between the Dense layer and the activation.
    """

    label: str
    activation: str
    initializer: str
    norm: str | None = None


VARIANTS = {
    # Activation statistics at initialization.
    "selu_lecun": Variant("SELU + LeCun normal (SELUDense)", "selu_dense", "lecun_normal"),
    "selu_glorot": Variant("SELU + Glorot uniform", "selu_dense", "glorot_uniform"),
    "relu_glorot": Variant("ReLU + Glorot uniform", "relu", "glorot_uniform"),
    "relu_he": Variant("ReLU + He normal", "relu", "he_normal"),
    "tanh_glorot": Variant("tanh + Glorot uniform", "tanh", "glorot_uniform"),
    "elu_lecun": Variant("ELU + LeCun normal", "elu", "lecun_normal"),
    # Trained classifiers (dropout, where used, is alpha dropout for "snn").
    "snn": Variant("SNN (SELUDense, LeCun normal)", "selu_dense", "lecun_normal"),
    "relu": Variant("ReLU MLP (He normal)", "relu", "he_normal"),
    "relu_bn": Variant("ReLU + BatchNorm (He normal)", "relu", "he_normal", "batch"),
    "relu_ln": Variant("ReLU + LayerNorm (He normal)", "relu", "he_normal", "layer"),
}


def build_mlp(variant, input_dim, depth, width, num_classes=None, dropout=0.0):
    """Builds a functional MLP of ``depth`` hidden blocks of ``width`` units.

    Block ``i`` (1-based) ends in a layer named ``hidden_i`` whose output is the block's
    activation (after dropout's place: dropout layers are separate, named
    ``dropout_i``, except inside `SELUDense`, whose alpha dropout is part of
    ``hidden_i`` and inactive at inference). Call `common.set_seed` first for
    reproducible weights.

    Args:
      variant: a key of `VARIANTS`.
      input_dim: number of input features.
      depth: number of hidden blocks (>= 1).
      width: units per hidden block.
      num_classes: if given, a linear ``logits`` Dense layer (Glorot uniform, as Keras'
        default, for every variant) follows; otherwise the model outputs the last block.
      dropout: rate of alpha dropout (SELU variants) or standard dropout (others).

    Returns:
      The ``keras.Model``.

    Raises:
      KeyError: for an unknown variant.
    """
    spec = VARIANTS[variant]
    inputs = keras.Input((input_dim,), name="features")
    h = inputs
    for i in range(1, depth + 1):
        if spec.activation == "selu_dense":
            h = SELUDense(width, dropout_rate=dropout, kernel_initializer=spec.initializer,
                          name=f"hidden_{i}")(h)
            continue
        if spec.norm is None:
            h = keras.layers.Dense(width, activation=spec.activation,
                                   kernel_initializer=spec.initializer,
                                   name=f"hidden_{i}")(h)
        else:
            h = keras.layers.Dense(width, use_bias=False, kernel_initializer=spec.initializer,
                                   name=f"dense_{i}")(h)
            norm = (keras.layers.BatchNormalization if spec.norm == "batch"
                    else keras.layers.LayerNormalization)
            h = norm(name=f"{spec.norm}_norm_{i}")(h)
            h = keras.layers.Activation(spec.activation, name=f"hidden_{i}")(h)
        if dropout > 0:
            h = keras.layers.Dropout(dropout, name=f"dropout_{i}")(h)
    if num_classes is not None:
        h = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, h, name=f"{variant}_d{depth}_w{width}")


def is_hidden_output(layer):
    """Whether ``layer`` is the last layer of a hidden block (named ``hidden_<i>``).

    Args:
      layer: a Keras layer.

    Returns:
      True for the layers `build_mlp` names ``hidden_<i>``.
    """
    return layer.name.startswith("hidden_")
