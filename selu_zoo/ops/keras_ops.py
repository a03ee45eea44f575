"""The backend-neutral implementation of `selu_zoo.ops` (JAX and PyTorch), on ``keras.ops``.

The same numbers as the TensorFlow implementation: the forward is a degree-5 polynomial for
``-0.5 < x < 0`` (where ``exp(x) - 1`` cancels, and XLA's ``expm1`` is about 3 ulp off) and
``SCALE * ALPHA * (exp(x) - 1)`` below; the gradient ``keras.ops.custom_gradient`` returns
is computed from the input, with ``SCALE * ALPHA * exp(x)`` as ``K * exp(x + C)`` so that it
stays normal where ``exp(x)`` alone would be flushed to zero. float16 and bfloat16 are
computed in float32; float64 uses ``expm1``. The alpha-dropout masks are `masks.keep_mask`.
"""

import keras
from keras import ops

from selu_zoo import theory
from selu_zoo.constants import SCALE, SCALE_ALPHA
from selu_zoo.ops import masks
from selu_zoo.ops.coefficients import (
    DERIVATIVE_FACTOR, DERIVATIVE_SHIFT, NEAR_ZERO_LIMIT, SA_EXPM1_OVER_X, horner)

_HALF_DTYPES = ("float16", "bfloat16")


def _as_floating(x):
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "float" not in dtype:
        raise TypeError(f"x must be a floating-point tensor (float16, bfloat16, float32 or "
                        f"float64), got dtype {dtype}")
    return x, dtype


def _compute_dtype(dtype):
    return "float32" if dtype in _HALF_DTYPES else dtype


def _negative_part(x):
    # min(x, 0); keras.ops.minimum returns float32 for float64 inputs on torch (Keras 3.15).
    return ops.where(x < 0, x, ops.zeros_like(x))


def _selu_math(x, dtype):
    """SELU of ``x`` (already in its compute dtype ``dtype``)."""
    negative_part = _negative_part(x)
    if dtype == "float64":
        negative = SCALE_ALPHA * ops.expm1(negative_part)
    else:
        near_zero = negative_part * horner(negative_part, SA_EXPM1_OVER_X)
        negative = ops.where(negative_part > NEAR_ZERO_LIMIT, near_zero,
                             SCALE_ALPHA * (ops.exp(negative_part) - 1))
    return ops.where(x > 0, SCALE * x, negative)


def _derivative_math(x):
    return ops.where(x > 0, ops.cast(SCALE, x.dtype),
                     DERIVATIVE_FACTOR * ops.exp(_negative_part(x) + DERIVATIVE_SHIFT))


@ops.custom_gradient
def _selu_with_gradient(x):
    dtype = keras.backend.standardize_dtype(x.dtype)
    xc = ops.cast(x, _compute_dtype(dtype))

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return ops.cast(ops.cast(upstream, xc.dtype) * _derivative_math(xc), dtype)

    return ops.cast(_selu_math(xc, _compute_dtype(dtype)), dtype), grad


def selu(x):
    """Exact SELU (see `selu_zoo.ops.selu`)."""
    x, _ = _as_floating(x)
    return _selu_with_gradient(x)


def selu_derivative(x):
    """The derivative of `selu` at ``x`` (``SCALE * ALPHA`` at exactly 0), in x's dtype."""
    x, dtype = _as_floating(x)
    return ops.cast(_derivative_math(ops.cast(x, _compute_dtype(dtype))), dtype)


def selu_dense(x, kernel, bias=None):
    """``selu(x @ kernel + bias)``."""
    x, _ = _as_floating(x)
    z = ops.matmul(x, ops.cast(kernel, x.dtype))
    return selu(z if bias is None else z + ops.cast(bias, x.dtype))


def alpha_dropout(x, rate, seed, noise_shape=None, *, mean=0.0, variance=1.0):
    """Alpha dropout in training mode (see `selu_zoo.ops.alpha_dropout`)."""
    rate = theory.validate_rate(rate)
    x, dtype = _as_floating(x)
    if rate == 0.0:
        return x
    params = masks.dropout_parameters(rate, mean, variance)
    pattern = masks.noise_pattern(tuple(x.shape), noise_shape) or (None,) * len(x.shape)
    shape = tuple(n if d is None else d for d, n in zip(pattern, ops.shape(x)))
    keep = masks.keep_mask(shape, masks.seed_pair(seed), params.threshold)
    compute = _compute_dtype(dtype)
    kept = params.a * ops.cast(x, compute) + params.b
    return ops.cast(ops.where(keep, kept, ops.cast(params.dropped, compute)), dtype)


def selu_alpha_dropout(x, rate, seed, noise_shape=None, *, mean=0.0, variance=1.0):
    """``alpha_dropout(selu(x), ...)`` (see `selu_zoo.ops.selu_alpha_dropout`)."""
    rate = theory.validate_rate(rate)
    if rate == 0.0:
        raise ValueError("selu_alpha_dropout needs a rate in (0, 1); use selu for rate 0")
    return alpha_dropout(selu(x), rate, seed, noise_shape, mean=mean, variance=variance)
