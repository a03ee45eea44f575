"""Alpha-dropout keep masks that depend on the seed alone, bit-identical on every backend.

Every element of a mask gets a 31-bit draw from one counter-based hash in int32 wrap-around
arithmetic (multiply, xor, masked shift: the operations TensorFlow, JAX, PyTorch and NumPy
compute identically; ``keras.ops`` has no portable uint64, and torch promotes uint32). The
draw is keyed by

* ``seed``: the layer's seed,
* ``step``: the layer's step counter (a `keras.random.SeedGenerator`'s, one per training
  call; it is a variable, so checkpoints and ``.keras`` files carry it),
* the *global* example index: under a ``tf.distribute`` strategy each replica holds a
  contiguous slice of the global batch and offsets its rows by ``replica * local batch``,
* the feature index (the element's position within its example's noise shape),

so the same seed gives the same masks on TensorFlow, JAX and PyTorch, N replicas draw the
masks one replica draws, and a resumed run draws the masks the uninterrupted run would have.

The hash: ``key = fmix32(fmix32(seed) + step * GOLDEN)``, element ``i`` (its row-major index
in the noise shape, offset by ``example_offset * features``) gets
``fmix32(i * GOLDEN + key) >>> 1``, where fmix32 is MurmurHash3's finalizer, a bijection of
32-bit words, and GOLDEN is the odd Weyl increment ``0x9E3779B1``. An element is kept when its
draw is at least ``threshold = round(rate * 2**31)``; the affine correction uses that exact
quantized rate (`alpha_dropout_keep_probability`), so the moments are kept exactly.
"""

import functools
import math
import numbers

import keras
from keras import ops

from selu_zoo import theory

DRAW_BITS = 31
_FMIX_1 = -2048144789  # 0x85EBCA6B as a signed 32-bit word
_FMIX_2 = -1028477387  # 0xC2B2AE35
_GOLDEN = -1640531535  # 0x9E3779B1


def _int32(value):
    return ops.convert_to_tensor(value, "int32")


def _shift_right_logical(h, bits):
    return ops.bitwise_and(ops.right_shift(h, bits), (1 << (32 - bits)) - 1)


def _fmix32(h):
    """MurmurHash3's 32-bit finalizer on int32 words (wrap-around arithmetic)."""
    h = ops.bitwise_xor(h, _shift_right_logical(h, 16))
    h = ops.multiply(h, _int32(_FMIX_1))
    h = ops.bitwise_xor(h, _shift_right_logical(h, 13))
    h = ops.multiply(h, _int32(_FMIX_2))
    return ops.bitwise_xor(h, _shift_right_logical(h, 16))


def mask_key(seed):
    """The int32 scalar key of one draw from a shape-[2] int32 ``(seed, step)`` tensor."""
    return _fmix32(ops.add(_fmix32(seed[0]), ops.multiply(seed[1], _int32(_GOLDEN))))


def draws(counter, key):
    """31-bit non-negative int32 draws for an int32 tensor of element counters."""
    return _shift_right_logical(_fmix32(ops.add(ops.multiply(counter, _int32(_GOLDEN)), key)),
                                1)


def seed_pair(seed):
    """A shape-[2] int32 ``(seed, step)`` tensor from an int, a pair or a SeedGenerator.

    A `keras.random.SeedGenerator` gives its state and advances its step: a new mask on
    every call, reproducible from the generator's seed.

    Raises:
      ValueError: for anything else.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return ops.cast(seed.next(), "int32")
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return _int32([int(seed) % 2**31, 0])
    shape = getattr(seed, "shape", None)
    if shape is None or tuple(shape) != (2,) or "int" not in str(getattr(seed, "dtype", "")):
        raise ValueError(f"seed must be an int, a shape-[2] integer tensor or a "
                         f"keras.random.SeedGenerator, got {seed!r}")
    return ops.cast(seed, "int32")


class DropoutParameters:
    """The quantized drop threshold and the affine map of alpha dropout, as Python numbers."""

    def __init__(self, rate, mean, variance):
        self.threshold = min(max(round(rate * 2.0**DRAW_BITS), 1), 2**DRAW_BITS - 1)
        self.rate = self.threshold / 2.0**DRAW_BITS  # the exact drop probability of the mask
        self.a, self.b, alpha_prime = theory.alpha_dropout_parameters(self.rate, mean, variance)
        self.dropped = self.a * alpha_prime + self.b  # what a dropped unit becomes

    def key(self):
        """A hashable tuple: the static argument of compiled functions."""
        return (self.threshold, self.a, self.b, self.dropped)


@functools.lru_cache(maxsize=256)
def dropout_parameters(rate, mean=0.0, variance=1.0):
    """The cached `DropoutParameters` of a validated rate and fixed point."""
    return DropoutParameters(rate, float(mean), float(variance))


def alpha_dropout_keep_probability(rate):
    """The exact keep probability of the masks that the dropout ops draw for ``rate``.

    ``rate`` is quantized to a multiple of 2**-31 (an error below 2.4e-10); the affine
    correction uses this value, so the moments are preserved exactly.

    Args:
      rate: drop probability in (0, 1).

    Returns:
      A Python float.
    """
    return 1.0 - dropout_parameters(theory.validate_rate(rate)).rate


def validate_noise_shape(noise_shape):
    """Checks a dropout noise shape: a sequence of positive ints or None entries, or None.

    Args:
      noise_shape: None, or a list/tuple (or 1-D array) whose entries are positive ints
        (Python or NumPy; ``True``/``False`` are not ints here) or None.

    Returns:
      None, or the noise shape as a tuple of ints and Nones.

    Raises:
      ValueError: for anything else (a string, a float entry such as 1.5, 0 or a negative
        entry), naming the offending value.
    """
    if noise_shape is None:
        return None
    problem = f"noise_shape must be None or a sequence of positive ints or None, got " \
              f"{noise_shape!r}"
    if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__iter__"):
        raise ValueError(problem)
    entries = tuple(noise_shape)
    for d in entries:
        if d is not None and (isinstance(d, bool) or not isinstance(d, numbers.Integral)
                              or d <= 0):
            raise ValueError(problem)
    return tuple(None if d is None else int(d) for d in entries)


def noise_pattern(shape, noise_shape):
    """Validates ``noise_shape`` against a static ``shape``; returns it as a tuple (or None).

    Raises:
      ValueError: if it has another rank or an entry that does not broadcast.
    """
    noise_shape = validate_noise_shape(noise_shape)
    if noise_shape is None:
        return None
    if len(noise_shape) != len(shape):
        raise ValueError(
            f"noise_shape must have one entry per dimension of x (rank {len(shape)}), "
            f"got {noise_shape}")
    for d, n in zip(noise_shape, shape):
        if d not in (None, 1) and n is not None and d != n:
            raise ValueError(f"noise_shape {noise_shape} does not broadcast to x's shape "
                             f"{tuple(shape)}: each entry must be None, 1 or x's dimension")
    return noise_shape


def keep_mask(shape, seed, threshold, example_offset=0):
    """The boolean keep mask of a noise ``shape`` (Python ints), computed with keras.ops.

    Args:
      shape: the resolved noise shape, a tuple of ints.
      seed: a shape-[2] int32 ``(seed, step)`` tensor (`seed_pair`).
      threshold: `DropoutParameters.threshold`.
      example_offset: the global index of this batch's first row (int or int32 scalar);
        ignored when the mask is shared over the batch axis (``shape[0] == 1``).

    Returns:
      A bool tensor of ``shape``.
    """
    size = math.prod(shape)
    counter = ops.arange(size, dtype="int32")
    if len(shape) and shape[0] != 1:
        counter = ops.add(counter, ops.multiply(_int32(example_offset),
                                                _int32(size // max(shape[0], 1))))
    words = draws(counter, mask_key(seed))
    return ops.reshape(ops.greater_equal(words, _int32(threshold)), shape)
