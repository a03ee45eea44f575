"""Tensor functions for self-normalizing networks: exact SELU, fused dense+SELU, alpha dropout.

Convention (the paper's, also PyTorch's and JAX's)::

    selu(x) = SCALE * x                       for x > 0
    selu(x) = SCALE * ALPHA * (exp(x) - 1)    for x <= 0

so the derivative at exactly 0 is ``SCALE * ALPHA`` (TensorFlow's own ``SeluGrad`` kernel uses
``SCALE`` there, and eager and XLA disagree).

How the ops are built, and why:

* The forward is a plain ``@tf.function`` using ``expm1`` on ``min(x, 0)``: exact near 0 (where
  ``exp(x) - 1`` cancels) and free of overflow in the branch that ``where`` discards. It is
  never XLA-compiled, so a SavedModel that calls it can be served by stock TensorFlow Serving.
* The gradient is a ``tf.custom_gradient`` whose backward is a ``tf.function(jit_compile=True)``
  computed from the *input*, not rebuilt from the output, so it stays exact for large negative
  inputs. It is only reached when differentiating, never by a serving graph.
* float16 and bfloat16 inputs are computed in float32 and rounded once at the end, so they are
  within half an ulp of their own rounding of the exact value; outputs keep the input dtype.
* Second-order gradients work: the backward is itself differentiable.
* Inside `tflite_lowering()` (a trace-time switch used only by `selu_zoo.export`), `selu` and
  `selu_dense` trace to ``elu(x) * where(x > 0, SCALE, SCALE * ALPHA)`` instead: the
  TFLite converter lowers ``expm1`` to ``EXP`` + ``SUB`` (``selu(-1e-8)`` becomes 0 again) but
  ``tf.nn.elu`` to the builtin ``ELU``, which is exact (TensorFlow's own Elu kernel is not).
"""

import contextlib
import threading

import tensorflow as tf

from selu_zoo import theory
from selu_zoo.constants import SCALE, SCALE_ALPHA

__all__ = ["selu", "selu_derivative", "selu_dense", "alpha_dropout", "tflite_lowering"]

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def _compute_dtype(dtype):
    """The dtype the math runs in: float32 for half types, the dtype itself otherwise."""
    return tf.float32 if dtype in _HALF_DTYPES else dtype


def _as_floating(x, what="x"):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(
            f"{what} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {x.dtype.name}"
        )
    return x


def _selu_math(x):
    """SELU of ``x`` in x's own dtype (no casting)."""
    negative = tf.constant(SCALE_ALPHA, x.dtype) * tf.math.expm1(tf.minimum(x, 0))
    return tf.where(x > 0, tf.constant(SCALE, x.dtype) * x, negative)


def _selu_derivative_math(x):
    """d selu / dx in x's own dtype, from the input; ``SCALE * ALPHA`` at exactly 0."""
    negative = tf.constant(SCALE_ALPHA, x.dtype) * tf.exp(tf.minimum(x, 0))
    return tf.where(x > 0, tf.constant(SCALE, x.dtype), negative)


# --- Trace-time switch for TFLite conversion ------------------------------------------------

_lowering = threading.local()


@contextlib.contextmanager
def tflite_lowering():
    """Within this context, `selu` and `selu_dense` trace to an ELU-based forward for TFLite.

    TFLite has an exact builtin ``ELU`` kernel but lowers ``expm1`` to ``EXP`` then ``SUB``,
    which cancels near 0. Inside the context the forward is
    ``elu(x) * where(x > 0, SCALE, SCALE * ALPHA)`` (within 1.5 float32 ulp of the exact
    value in TFLite, measured), with no custom gradient and no nested ``tf.function``
    (nothing XLA-compiled).
    The flag is thread-local and read when a graph is *traced*: trace (and save) the graph
    you convert inside the context; functions traced earlier keep their own forward. Use it
    only for graphs handed to the TFLite converter: TensorFlow's own ``Elu`` kernel computes
    ``exp(x) - 1`` and is as inexact near 0 as ``tf.nn.selu`` (-1e-6 is 1.3% off), while
    TFLite's builtin ``ELU`` is exact.

    Yields:
      None. Contexts nest; the previous state is restored on exit.
    """
    previous = getattr(_lowering, "active", False)
    _lowering.active = True
    try:
        yield
    finally:
        _lowering.active = previous


def _tflite_lowering_active():
    return getattr(_lowering, "active", False)


def _selu_elu_math(x):
    """SELU as ``elu(x) * where(x > 0, SCALE, SCALE * ALPHA)``, the form TFLite maps to ELU.

    ``elu(x)`` is ``x`` for ``x > 0`` and ``expm1(x)`` otherwise, so this is one rounding of
    each branch; it lowers to ELU, GREATER, SELECT_V2 and MUL, which a following
    FULLY_CONNECTED cannot duplicate to fuse an activation (a ``relu`` branch would).
    """
    compute = _compute_dtype(x.dtype)
    xc = tf.cast(x, compute)
    scale = tf.where(xc > 0, tf.constant(SCALE, compute), tf.constant(SCALE_ALPHA, compute))
    return tf.cast(tf.nn.elu(xc) * scale, x.dtype)


@tf.function(autograph=False, reduce_retracing=True)
def _selu_forward(x):
    compute = _compute_dtype(x.dtype)
    return tf.cast(_selu_math(tf.cast(x, compute)), x.dtype)


@tf.function(autograph=False, jit_compile=True, reduce_retracing=True)
def _selu_backward(x, dy):
    compute = _compute_dtype(x.dtype)
    dx = tf.cast(dy, compute) * _selu_derivative_math(tf.cast(x, compute))
    return tf.cast(dx, dy.dtype)


@tf.custom_gradient
def _selu_with_gradient(x):
    def grad(dy):
        return _selu_backward(x, dy)

    return _selu_forward(x), grad


def selu(x):
    """Scaled exponential linear unit, exact to float rounding in every floating dtype.

    Args:
      x: a floating-point tensor (or anything `tf.convert_to_tensor` accepts).

    Returns:
      A tensor of x's shape and dtype: ``SCALE * x`` where ``x > 0``, else
      ``SCALE * ALPHA * expm1(x)``. NaN stays NaN, ``-inf`` gives ``-SCALE * ALPHA``.

    Raises:
      TypeError: if x is not floating point.
    """
    x = _as_floating(x)
    if _tflite_lowering_active():
        return _selu_elu_math(x)
    return _selu_with_gradient(x)


def selu_derivative(x):
    """The derivative of `selu` at ``x`` (``SCALE * ALPHA`` at exactly 0), in x's dtype.

    Args:
      x: a floating-point tensor.

    Returns:
      A tensor of x's shape and dtype.
    """
    x = _as_floating(x)
    compute = _compute_dtype(x.dtype)
    return tf.cast(_selu_derivative_math(tf.cast(x, compute)), x.dtype)


# --- Dense + bias + SELU as one op ---------------------------------------------------------


def _flatten_leading(x):
    """Reshape ``(..., d)`` to ``(n, d)``; returns the reshaped tensor and the leading shape."""
    leading = tf.shape(x)[:-1]
    return tf.reshape(x, [-1, tf.shape(x)[-1]]), leading


@tf.function(autograph=False, reduce_retracing=True)
def _selu_dense_forward(x, kernel, bias):
    z = tf.nn.bias_add(tf.matmul(x, kernel), bias)  # matmul broadcasts leading dimensions
    compute = _compute_dtype(z.dtype)
    return tf.cast(_selu_math(tf.cast(z, compute)), z.dtype), z


@tf.function(autograph=False, jit_compile=True, reduce_retracing=True)
def _selu_dense_backward(x, kernel, z, dy):
    compute = _compute_dtype(z.dtype)
    dz = tf.cast(tf.cast(dy, compute) * _selu_derivative_math(tf.cast(z, compute)), z.dtype)
    x2, leading = _flatten_leading(x)
    dz2, _ = _flatten_leading(dz)
    dx = tf.reshape(tf.matmul(dz2, kernel, transpose_b=True), tf.concat([leading, [-1]], 0))
    dkernel = tf.matmul(x2, dz2, transpose_a=True)
    dbias = tf.reduce_sum(dz2, axis=0)
    return dx, dkernel, dbias


@tf.custom_gradient
def _selu_dense_with_gradient(x, kernel, bias):
    y, z = _selu_dense_forward(x, kernel, bias)

    def grad(dy):
        return _selu_dense_backward(x, kernel, z, dy)

    return y, grad


def selu_dense(x, kernel, bias=None):
    """``selu(x @ kernel + bias)`` as one fused op with an XLA-compiled backward.

    The pre-activation is kept for the backward pass (the same memory a separate
    Dense + activation would keep); the backward computes the SELU derivative from it.

    Args:
      x: floating tensor of shape ``(..., in_features)``.
      kernel: tensor of shape ``(in_features, units)``, x's dtype.
      bias: tensor of shape ``(units,)`` or None (zeros).

    Returns:
      Tensor of shape ``(..., units)`` in x's dtype.

    Raises:
      TypeError: if x is not floating point.
    """
    x = _as_floating(x)
    kernel = tf.convert_to_tensor(kernel, dtype=x.dtype)
    bias = (tf.zeros(tf.shape(kernel)[-1:], x.dtype) if bias is None
            else tf.convert_to_tensor(bias, dtype=x.dtype))
    if _tflite_lowering_active():
        return _selu_elu_math(tf.nn.bias_add(tf.matmul(x, kernel), bias))
    return _selu_dense_with_gradient(x, kernel, bias)


# --- Alpha dropout ---------------------------------------------------------------------------


def _resolve_noise_shape(x, noise_shape):
    """Replace ``None`` entries of ``noise_shape`` by x's dynamic dimensions."""
    if noise_shape is None:
        return tf.shape(x)
    if len(noise_shape) != x.shape.rank:
        raise ValueError(
            f"noise_shape must have one entry per dimension of x (rank {x.shape.rank}), "
            f"got {tuple(noise_shape)}"
        )
    dynamic = tf.shape(x)
    return tf.stack([dynamic[i] if d is None else tf.constant(d, tf.int32)
                     for i, d in enumerate(noise_shape)])


def _draw_seed(seed):
    """A shape-[2] int seed for the stateless generators from an int, pair or SeedGenerator."""
    import keras  # local: keeps ops importable without touching Keras' global state

    if isinstance(seed, keras.random.SeedGenerator):
        return tf.cast(seed.next(), tf.int32)
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.shape != (2,):
        raise ValueError(f"seed must be an int, a shape-[2] integer tensor or a "
                         f"keras.random.SeedGenerator, got shape {seed.shape}")
    return tf.cast(seed, tf.int32)


def alpha_dropout(x, rate, seed, noise_shape=None, *, mean=0.0, variance=1.0):
    """Alpha dropout in training mode (Klambauer et al. 2017, section "New Dropout Technique").

    Each unit is kept with probability ``1 - rate``; dropped units take the SELU saturation
    value ``alpha'``, then ``a * x + b`` restores the mean and variance of the fixed point
    ``(mean, variance)``. The parameters come from
    `selu_zoo.theory.alpha_dropout_parameters`.

    Args:
      x: floating tensor.
      rate: drop probability, a Python float in [0, 1).
      seed: an int, a shape-[2] integer tensor (stateless: the same seed gives the same mask),
        or a `keras.random.SeedGenerator` (a new mask on every call, reproducible from its seed).
      noise_shape: optional shape of the keep mask, broadcast against x; ``None`` entries take
        x's dimension (for example ``(None, 1, None)`` shares the mask over axis 1).
      mean: the fixed-point mean the activations are at.
      variance: the fixed-point variance the activations are at.

    Returns:
      A tensor of x's shape and dtype. With ``rate == 0`` it is x itself.

    Raises:
      ValueError: if rate is not in [0, 1) or noise_shape does not match x's rank.
    """
    rate = theory.validate_rate(rate)
    x = _as_floating(x)
    if rate == 0.0:
        return x
    a, b, alpha_prime = theory.alpha_dropout_parameters(rate, mean, variance)
    shape = _resolve_noise_shape(x, noise_shape)
    keep = tf.random.stateless_uniform(shape, seed=_draw_seed(seed)) >= rate
    compute = _compute_dtype(x.dtype)
    xc = tf.cast(x, compute)
    kept = tf.constant(a, compute) * xc + tf.constant(b, compute)
    dropped = tf.constant(a * alpha_prime + b, compute)
    return tf.cast(tf.where(keep, kept, dropped), x.dtype)
