"""`MirrorPadding2D`: reflect or symmetric spatial padding, which keeps activation variance.

Zero padding ("same" convolutions) feeds border outputs fewer unit-variance inputs, so their
pre-activations have less variance than 1/fan_in weights promise; on small images (8x8 has
28 border pixels of 64) that pulls a SELU network off its fixed point. Mirrored borders
repeat real activations instead.
"""

import keras

from selu_zoo.layers._built import mark_built_if_stateless

_MODES = ("reflect", "symmetric")


def _slice(x, axis, start, stop):
    """``x[..., start:stop, ...]`` along ``axis``."""
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop)
    return x[tuple(index)]


@keras.saving.register_keras_serializable(package="selu_zoo")
class MirrorPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring, as ``np.pad`` with ``mode="reflect"`` or ``"symmetric"``.

    Follow it with a ``padding="valid"`` convolution. Built from slices, flips and
    concatenations, so it is the same on every backend (``keras.ops.pad(mode="symmetric")``
    is not on PyTorch in Keras 3.15) and lowers to TFLite builtins.

    Args:
      padding: int, or ``((top, bottom), (left, right))`` / ``(height, width)`` ints.
      mode: ``"reflect"`` (edge not repeated; each padding must be smaller than the
        dimension) or ``"symmetric"`` (edge repeated).
      data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
        ``keras.config.image_data_format()``.
    """

    def __init__(self, padding=1, mode="reflect", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = self._normalize_padding(padding)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"data_format must be 'channels_last' or 'channels_first', "
                             f"got {data_format!r}")
        self.data_format = data_format
        self.input_spec = keras.InputSpec(ndim=4)
        mark_built_if_stateless(self)

    @staticmethod
    def _normalize_padding(padding):
        if isinstance(padding, int) and not isinstance(padding, bool):
            pairs = ((padding, padding), (padding, padding))
        elif len(padding) == 2 and all(isinstance(p, int) for p in padding):
            pairs = ((padding[0], padding[0]), (padding[1], padding[1]))
        else:
            pairs = tuple(tuple(int(v) for v in p) for p in padding)
        if len(pairs) != 2 or any(len(p) != 2 or min(p) < 0 for p in pairs):
            raise ValueError(f"padding must be a non-negative int, (height, width) or "
                             f"((top, bottom), (left, right)), got {padding!r}")
        return pairs

    def call(self, inputs):
        """Pads the two spatial axes.

        Args:
          inputs: 4-D tensor.

        Returns:
          The padded tensor.
        """
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        skip = 1 if self.mode == "reflect" else 0  # reflect does not repeat the edge
        for axis, (before, after) in zip(axes, self.padding):
            parts = [inputs]
            if before:
                parts.insert(0, keras.ops.flip(_slice(inputs, axis, skip, skip + before),
                                               axis))
            if after:
                size = keras.ops.shape(inputs)[axis]
                parts.append(keras.ops.flip(
                    _slice(inputs, axis, size - skip - after, size - skip), axis))
            inputs = keras.ops.concatenate(parts, axis=axis) if len(parts) > 1 else inputs
        return inputs

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (before, after) in zip(
                (1, 2) if self.data_format == "channels_last" else (2, 3), self.padding):
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "mode": self.mode,
                "data_format": self.data_format}
