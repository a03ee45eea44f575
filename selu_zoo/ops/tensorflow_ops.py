"""The TensorFlow implementation of `selu_zoo.ops`: exact SELU, fused dense+SELU, alpha dropout.

What only TensorFlow needs lives here: the ``@tf.function`` forward that stock TensorFlow
Serving serves, the XLA-compiled backward and fused dropout, the serving and TFLite lowerings.
The other backends use `selu_zoo.ops.keras_ops`; the masks of both come from
`selu_zoo.ops.masks`.

Convention (the paper's, also PyTorch's and JAX's)::

    selu(x) = SCALE * x                       for x > 0
    selu(x) = SCALE * ALPHA * (exp(x) - 1)    for x <= 0

so the derivative at exactly 0 is ``SCALE * ALPHA`` (TensorFlow's own ``SeluGrad`` kernel uses
``SCALE`` there, and eager and XLA disagree).

How the ops are built, and why:

* `selu` and `selu_dense` are what inference reaches. Their forward is a plain ``@tf.function``,
  never XLA-compiled, so a SavedModel that calls it can be served by stock TensorFlow Serving.
  It is exact (within 3e-7 relative in float32, tested on dense scans) in eager mode, in
  ``tf.function`` and inside an outer ``jit_compile=True`` function alike, with one formula:
  a degree-5 polynomial for ``-0.5 < x < 0`` and TensorFlow's ``Selu`` kernel elsewhere (exact
  there). TensorFlow's ``Expm1`` is not enough: its vectorized CPU kernel (tensors of 16 or
  more elements) and XLA's expm1 are about 3 ulp off, and ``Selu`` / ``Elu`` compute
  ``exp(x) - 1``, which cancels near 0.
* Their gradient is a ``tf.custom_gradient`` whose backward is a ``tf.function(jit_compile=True)``
  computed from the *input*, not rebuilt from the output, so it stays exact for large negative
  inputs. It is only reached when differentiating, never by a serving graph.
* `alpha_dropout` and `selu_alpha_dropout` are training-only (inference is the identity, or
  `selu`), so they are XLA-compiled, and each pass is one fused element-wise loop: the
  random mask, the ``alpha'`` substitution, the affine correction and, for
  `selu_alpha_dropout`, the SELU and its derivative. The forward returns the slope too and
  the backward is one multiply (one XLA launch per call). See "Alpha dropout" below.
* float16 and bfloat16 inputs are computed in float32 and rounded once at the end, so they are
  within one ulp of the exact value (tested); outputs keep the input dtype.
* Second-order gradients of `selu` work: its backward is itself differentiable.
* Flush-to-zero: TensorFlow runs its CPU kernels with subnormals flushed to zero, so a
  subnormal *input* (``|x| < 1.18e-38`` in float32) is read as 0 and gives 0. That is the one
  exception to the bound above; every normal input with a normal result is covered. The
  gradient avoids subnormal intermediates: ``SCALE * ALPHA * exp(x)`` is computed as
  ``K * exp(x + C)`` (see `DERIVATIVE_SHIFT`), normal wherever the result is.
* Trace-time lowerings (used by `selu_zoo.export`), read when a graph is traced:
  `serving_lowering(form)` traces `selu` and `selu_dense` to a serving form without custom
  gradient or nested function: ``"exact"`` (the exact forward) or ``"fused"`` (TensorFlow's
  own ``Selu`` kernel, the speed of stock ``Dense(activation="selu")``; not exact near 0).
  `tflite_lowering()` traces them to ``elu(x) * where(x > 0, SCALE, SCALE * ALPHA)``: the
  TFLite converter lowers ``expm1`` to ``EXP`` + ``SUB`` (``selu(-1e-8)`` becomes 0 again) but
  ``tf.nn.elu`` to the builtin ``ELU``, which is exact (TensorFlow's own Elu kernel is not).
"""

import contextlib
import threading

import tensorflow as tf

from selu_zoo import theory
from selu_zoo.constants import SCALE, SCALE_ALPHA
from selu_zoo.ops import masks
from selu_zoo.ops.coefficients import (
    DERIVATIVE_FACTOR, DERIVATIVE_SHIFT, NEAR_ZERO_LIMIT, SA_EXPM1_OVER_X, horner)

__all__ = ["selu", "selu_derivative", "selu_dense", "alpha_dropout", "selu_alpha_dropout",
           "tflite_lowering", "serving_lowering", "SERVING_FORMS", "DEFAULT_SERVING_FORM"]

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def _compute_dtype(dtype):
    """The dtype the math runs in: float32 for half types, the dtype itself otherwise."""
    return tf.float32 if dtype in _HALF_DTYPES else dtype


def _in_compute_dtype(fn, x):
    """``fn(x)`` evaluated in `_compute_dtype` and cast back to x's dtype."""
    return tf.cast(fn(tf.cast(x, _compute_dtype(x.dtype))), x.dtype)


def _as_floating(x, what="x"):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(
            f"{what} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {x.dtype.name}"
        )
    return x


def _selu_math(x):
    """SELU of ``x`` in x's own dtype (no casting); forward only, never differentiated.

    float32 (and half types, computed in float32): the polynomial for ``-0.5 < x < 0`` and
    ``tf.nn.selu`` elsewhere, 16 TensorFlow kernels outside XLA. The same formula is exact
    under XLA, whose ``Selu`` lowering (``expm1``) is exact below -0.5 too, so the forward
    needs no way to tell whether it is being compiled. float64 uses ``expm1``, which is exact
    to float64 rounding in both (the polynomial is float32-accurate only).
    """
    if x.dtype == tf.float64:
        negative = tf.constant(SCALE_ALPHA, x.dtype) * tf.math.expm1(x)
        return tf.where(x > 0, tf.constant(SCALE, x.dtype) * x, negative)
    near_zero = tf.logical_and(x > NEAR_ZERO_LIMIT, x < 0)
    return tf.where(near_zero, x * horner(x, SA_EXPM1_OVER_X), tf.nn.selu(x))


def _scaled_exp(x, factor=1.0):
    """``factor * SCALE * ALPHA * exp(x)`` without a subnormal intermediate (see above)."""
    return (tf.constant(factor * DERIVATIVE_FACTOR, x.dtype)
            * tf.exp(x + tf.constant(DERIVATIVE_SHIFT, x.dtype)))


def _selu_derivative_math(x):
    """d selu / dx in x's own dtype, from the input; ``SCALE * ALPHA`` at exactly 0.

    Differentiable (second-order gradients), hence ``min(x, 0)`` before ``exp``.
    """
    return tf.where(x > 0, tf.constant(SCALE, x.dtype), _scaled_exp(tf.minimum(x, 0)))


# --- Trace-time lowerings: serving forms and TFLite ----------------------------------------

SERVING_FORMS = ("exact", "fused")
# Chosen by benchmarks/results/serving.json: "fused" serves at the speed of stock Keras layers,
# and its end-to-end error on the zoo's models is that of float32 arithmetic itself.
DEFAULT_SERVING_FORM = "fused"

_lowering = threading.local()


@contextlib.contextmanager
def _lowered(name):
    previous = getattr(_lowering, "name", None)
    _lowering.name = name
    try:
        yield
    finally:
        _lowering.name = previous


def _active_lowering():
    """The lowering in effect in this thread: None, "tflite" or one of `SERVING_FORMS`."""
    return getattr(_lowering, "name", None)


def serving_lowering(form=DEFAULT_SERVING_FORM):
    """Within this context, `selu` and `selu_dense` trace to a serving form, for SavedModels.

    The forms (both have no custom gradient, no nested ``tf.function`` and nothing
    XLA-compiled, so stock TensorFlow Serving runs them):

    * ``"exact"``: the exact forward of `selu` (16 TensorFlow kernels for the activation).
    * ``"fused"``: TensorFlow's own ``Selu`` kernel, one kernel, as stock
      ``keras.layers.Dense(activation="selu")`` runs it. It computes ``exp(x) - 1``:
      ``selu(-1e-8)`` is 0 and ``-1e-6`` is 1.3% off, an absolute error below 2e-7, the size
      of one float32 rounding of a unit activation.

    Throughput and end-to-end error of each form on the zoo's models are in
    ``benchmarks/results/serving.json``; `DEFAULT_SERVING_FORM` is the one those numbers chose.
    The flag is thread-local and read when a graph is *traced*: trace (and save) inside the
    context; functions traced earlier keep their own forward. `selu` outside any lowering
    context stays exact. A lowered graph cannot be differentiated through `selu`'s custom
    gradient: use it for inference graphs only.

    Args:
      form: one of `SERVING_FORMS`.

    Returns:
      A context manager. Contexts nest (with `tflite_lowering` too); the innermost wins and
      the previous state is restored on exit.

    Raises:
      ValueError: if form is not one of `SERVING_FORMS`.
    """
    if form not in SERVING_FORMS:
        raise ValueError(f"form must be one of {SERVING_FORMS}, got {form!r}")
    return _lowered(form)


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

    Returns:
      A context manager. Contexts nest (with `serving_lowering` too); the innermost wins and
      the previous state is restored on exit.
    """
    return _lowered("tflite")


def _selu_elu_math(x):
    """SELU as ``elu(x) * where(x > 0, SCALE, SCALE * ALPHA)``, the form TFLite maps to ELU.

    ``elu(x)`` is ``x`` for ``x > 0`` and ``expm1(x)`` otherwise, so this is one rounding of
    each branch; it lowers to ELU, GREATER, SELECT_V2 and MUL, which a following
    FULLY_CONNECTED cannot duplicate to fuse an activation (a ``relu`` branch would).
    """
    scale = tf.where(x > 0, tf.constant(SCALE, x.dtype), tf.constant(SCALE_ALPHA, x.dtype))
    return tf.nn.elu(x) * scale


# What `selu` and `selu_dense` trace to inside each lowering context.
_LOWERED_MATH = {"exact": _selu_math, "fused": tf.nn.selu, "tflite": _selu_elu_math}


@tf.function(autograph=False, reduce_retracing=True)
def _selu_forward(x):
    return _in_compute_dtype(_selu_math, x)


# The XLA-compiled functions trace once per input shape (no reduce_retracing): XLA compiles
# per shape anyway, and a trace relaxed to [None, ...] after a second batch size compiles to
# slower loops.
@tf.function(autograph=False, jit_compile=True)
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
    """Scaled exponential linear unit, exact in every floating dtype and execution mode.

    Within 3e-7 relative of the true value in float32 (about two ulp), one ulp in float16 and
    bfloat16 (computed in float32, rounded once), a few float64 ulp in float64, eagerly, in
    ``tf.function`` and under XLA alike; the gradient too. Subnormal inputs are read as 0
    (TensorFlow flushes them). Inside `serving_lowering` or `tflite_lowering` it traces to
    that context's form instead.

    Args:
      x: a floating-point tensor (or anything `tf.convert_to_tensor` accepts).

    Returns:
      A tensor of x's shape and dtype: ``SCALE * x`` where ``x > 0``, else
      ``SCALE * ALPHA * expm1(x)``. NaN stays NaN, ``-inf`` gives ``-SCALE * ALPHA``.

    Raises:
      TypeError: if x is not floating point.
    """
    x = _as_floating(x)
    lowering = _active_lowering()
    if lowering is not None:
        return _in_compute_dtype(_LOWERED_MATH[lowering], x)
    return _selu_with_gradient(x)


def selu_derivative(x):
    """The derivative of `selu` at ``x`` (``SCALE * ALPHA`` at exactly 0), in x's dtype.

    Args:
      x: a floating-point tensor.

    Returns:
      A tensor of x's shape and dtype.
    """
    return _in_compute_dtype(_selu_derivative_math, _as_floating(x))


# --- Dense + bias + SELU as one op ---------------------------------------------------------


def _flatten_leading(x):
    """Reshape ``(..., d)`` to ``(n, d)``; returns the reshaped tensor and the leading shape."""
    leading = tf.shape(x)[:-1]
    return tf.reshape(x, [-1, tf.shape(x)[-1]]), leading


@tf.function(autograph=False, reduce_retracing=True)
def _selu_dense_forward(x, kernel, bias):
    z = tf.nn.bias_add(tf.matmul(x, kernel), bias)  # matmul broadcasts leading dimensions
    return _in_compute_dtype(_selu_math, z), z


@tf.function(autograph=False, jit_compile=True)
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

    This is the inference path of `selu_zoo.layers.SELUDense` (never XLA-compiled forward).
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
    lowering = _active_lowering()
    if lowering is not None:
        z = tf.nn.bias_add(tf.matmul(x, kernel), bias)
        return _in_compute_dtype(_LOWERED_MATH[lowering], z)
    return _selu_dense_with_gradient(x, kernel, bias)


# --- Alpha dropout ---------------------------------------------------------------------------
#
# Both dropout ops are training-only (inference is the identity, or `selu`), so their passes
# are XLA-compiled, each ONE fused element-wise loop, the mask's hash (`selu_zoo.ops.masks`, a
# few int32 multiplies that XLA fuses and vectorizes) included; no random tensor is ever
# materialized. tf.random.stateless_uniform under XLA on CPU cost several times more per
# element (ThreeFry runs 20 rounds per output word).
#
# Each op is written once, as a "pass" that gives the output and its slope ``dy/dx``. The
# forward returns both as the real and imaginary parts of one complex tensor: one loop that
# hashes and exponentiates each element once (a stacked [y, slope] output is one loop too, but
# evaluates each half on its own), and the backward is one multiply by the kept slope. Outside
# ``jit_compile`` each call of a compiled function is an XLA launch, whose fixed cost inside a
# train step is about that of the loop itself: this is one launch per layer and step, not two.
# Inside ``jit_compile`` it trains as fast as a backward that recomputes the slope. The price is
# memory: the slope, one value per element, lives until the backward, and the op alone moves
# more bytes than a recomputing backward would (it is slower alone, not in a train step).


def _resolve_noise_shape(x, pattern):
    """Replace ``None`` entries of the noise pattern by x's dynamic dimensions."""
    if pattern is None:
        return tf.shape(x)
    dynamic = tf.shape(x)
    return tf.stack([dynamic[i] if d is None else tf.constant(d, tf.int32)
                     for i, d in enumerate(pattern)])


def _example_offset(x):
    """The global index of this replica's first row: ``replica * local batch`` (0 outside a
    multi-replica ``tf.distribute`` context), so that N replicas draw one replica's masks."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.constant(0, tf.int32)
    return tf.cast(context.replica_id_in_sync_group, tf.int32) * tf.shape(x)[0]


def _keep_mask(x, seed, offset, pattern, threshold):
    """The boolean keep mask (noise-shaped, broadcastable to x); see `masks.keep_mask`."""
    shape = _resolve_noise_shape(x, pattern)
    size = tf.reduce_prod(shape)
    counter = tf.range(size)
    if pattern is None or pattern[0] != 1:
        counter = counter + offset * (size // tf.maximum(shape[0], 1))
    words = masks.draws(counter, masks.mask_key(seed))
    return tf.reshape(words >= tf.constant(threshold, tf.int32), shape)


class _FusedPass:
    """A training pass ``fn(x, keep, params) -> (y, dy/dx)`` (compute dtype) as one
    XLA-compiled forward that keeps the slope for the backward (see "Alpha dropout" above).

    ``fn`` gets x in the compute dtype and the boolean keep mask (noise-shaped, broadcastable).
    """

    def __init__(self, fn):
        self._fn = fn
        self._forward = tf.function(self._output_and_slope, autograph=False, jit_compile=True)

    def _output_and_slope(self, x, seed, offset, pattern, params):
        keep = _keep_mask(x, seed, offset, pattern, params[0])
        y, slope = self._fn(tf.cast(x, _compute_dtype(x.dtype)), keep, params)
        y = tf.cast(tf.cast(y, x.dtype), y.dtype)  # rounded once, to x's dtype
        return tf.complex(y, tf.broadcast_to(slope, tf.shape(y)))

    def __call__(self, x, seed, offset, pattern, params):
        @tf.custom_gradient
        def fused(x):
            packed = self._forward(x, seed, offset, pattern, params)
            slope = tf.math.imag(packed)

            def grad(dy):
                return tf.cast(tf.cast(dy, slope.dtype) * slope, dy.dtype)

            return tf.cast(tf.math.real(packed), x.dtype), grad

        return fused(x)


def _alpha_dropout_math(x, keep, params):
    _, a, b, dropped = params
    y = tf.where(keep, tf.constant(a, x.dtype) * x + tf.constant(b, x.dtype),
                 tf.constant(dropped, x.dtype))
    return y, tf.where(keep, tf.constant(a, x.dtype), tf.constant(0, x.dtype))


_alpha_dropout = _FusedPass(_alpha_dropout_math)


def _dropout_arguments(x, rate, seed, noise_shape, mean, variance):
    """The static parameters, noise pattern, ``(seed, step)`` and example offset of a call."""
    params = masks.dropout_parameters(rate, mean, variance).key()
    pattern = masks.noise_pattern(tuple(x.shape), noise_shape)
    return params, pattern, masks.seed_pair(seed), _example_offset(x)


def alpha_dropout(x, rate, seed, noise_shape=None, *, mean=0.0, variance=1.0):
    """Alpha dropout in training mode (Klambauer et al. 2017, section "New Dropout Technique").

    Each unit is kept with probability ``1 - rate``; dropped units take the SELU saturation
    value ``alpha'``, then ``a * x + b`` restores the mean and variance of the fixed point
    ``(mean, variance)``. The parameters come from
    `selu_zoo.theory.alpha_dropout_parameters` for the mask's exact rate (``rate`` quantized
    to 2**-31, see `selu_zoo.ops.alpha_dropout_keep_probability`).

    Training only: mask, substitution and affine map are one XLA-compiled loop; the gradient
    is ``a * dy`` where kept, 0 where dropped. Works eagerly, in ``tf.function`` and inside
    ``jit_compile=True``, with the same masks and values in each.

    Args:
      x: floating tensor.
      rate: drop probability, a Python float in [0, 1).
      seed: an int, a shape-[2] integer tensor (stateless: the same seed gives the same mask),
        or a `keras.random.SeedGenerator` (a new mask on every call, reproducible from its seed).
      noise_shape: optional shape of the keep mask, broadcast against x: positive ints or
        ``None`` entries, which take x's dimension (for example ``(None, 1, None)`` shares the
        mask over axis 1); see `selu_zoo.ops.validate_noise_shape`.
      mean: the fixed-point mean the activations are at.
      variance: the fixed-point variance the activations are at.

    Returns:
      A tensor of x's shape and dtype. With ``rate == 0`` it is x itself.

    Raises:
      ValueError: if rate is not in [0, 1), or noise_shape is invalid or does not broadcast
        to x's static shape.
    """
    rate = theory.validate_rate(rate)
    x = _as_floating(x)
    if rate == 0.0:
        return x
    params, pattern, seed, offset = _dropout_arguments(x, rate, seed, noise_shape, mean,
                                                       variance)

    return _alpha_dropout(x, seed, offset, pattern, params)


# --- SELU followed by alpha dropout, fused (training) ----------------------------------------
#
# The slope is a * keep * selu'(x), computed from the input x (never from the output) as
# `selu` computes its gradient; output and slope share one exp per element.

# expm1(x) / x on [-0.7, 0] as a degree-6 polynomial (weighted least squares for relative
# error, 2e-10 in exact arithmetic). Below -0.7, SCALE * ALPHA * exp(x) - SCALE * ALPHA is
# exact enough: |expm1| > 0.5 there, so the rounding of the scaled exp (an ulp or two of a
# number below 0.5) stays below 2e-7 relative. tests/test_ops.py checks 3e-7 on dense scans.
_EXPM1_OVER_X = (0.9999999997838906, 0.4999999707527332, 0.1666660123049723,
                 0.041661120999686815, 0.008310718464612744, 0.0013408411694015136,
                 0.000146212636254491)
_POLY_LIMIT = -0.7


def _selu_and_derivative(x, factor=1.0):
    """``(factor * selu(x), factor * selu'(x))`` in x's dtype, with one exp per element.

    XLA's exact ``expm1`` costs about 1.5 times ``exp`` on CPU; the SELU uses the
    derivative's ``exp`` (`_scaled_exp`, exact where the derivative is normal) and a
    polynomial near 0, where ``exp(x) - 1`` would cancel. ``factor`` is folded into the
    constants, so it costs no rounding. float64 adds ``expm1`` (the polynomial is
    float32-accurate only).
    """
    dtype = x.dtype
    m = tf.minimum(x, 0)
    derivative = _scaled_exp(m, factor)
    scale_alpha = tf.constant(factor * SCALE_ALPHA, dtype)
    if dtype == tf.float64:
        negative = scale_alpha * tf.math.expm1(m)
    else:
        p = horner(m, tuple(factor * SCALE_ALPHA * c for c in _EXPM1_OVER_X))
        negative = tf.where(m > _POLY_LIMIT, m * p, derivative - scale_alpha)
    scale = tf.constant(factor * SCALE, dtype)
    positive = x > 0
    return tf.where(positive, scale * x, negative), tf.where(positive, scale, derivative)


def _selu_alpha_dropout_math(x, keep, params):
    _, a, b, dropped = params
    scaled, slope = _selu_and_derivative(x, factor=a)
    y = tf.where(keep, scaled + tf.constant(b, x.dtype), tf.constant(dropped, x.dtype))
    return y, tf.where(keep, slope, tf.constant(0, x.dtype))


_selu_alpha_dropout = _FusedPass(_selu_alpha_dropout_math)


def selu_alpha_dropout(x, rate, seed, noise_shape=None, *, mean=0.0, variance=1.0):
    """``alpha_dropout(selu(x), rate, seed, ...)`` fused into one pass: for training only.

    The training path of `selu_zoo.layers.SELUDense` with dropout. The forward (SELU, exact
    as `selu`; mask; ``alpha'`` substitution; affine correction) is one XLA-compiled loop;
    the gradient is ``dy * a * keep * selu'(x)``, the derivative computed from the input.
    Being XLA-compiled, it must not be reached by a serving graph: use `selu` / `selu_dense`
    there (the layers do).

    Args:
      x: floating tensor (the pre-activation).
      rate: drop probability in (0, 1); use `selu` for 0.
      seed: as in `alpha_dropout`.
      noise_shape: as in `alpha_dropout`.
      mean: the fixed-point mean of the SELU output.
      variance: the fixed-point variance of the SELU output.

    Returns:
      A tensor of x's shape and dtype.

    Raises:
      TypeError: if x is not floating point.
      ValueError: if rate is not in (0, 1), or noise_shape is invalid or does not broadcast
        to x's static shape.
    """
    rate = theory.validate_rate(rate)
    if rate == 0.0:
        raise ValueError("selu_alpha_dropout needs a rate in (0, 1); use selu for rate 0")
    x = _as_floating(x)
    params, pattern, seed, offset = _dropout_arguments(x, rate, seed, noise_shape, mean,
                                                       variance)

    return _selu_alpha_dropout(x, seed, offset, pattern, params)
