"""Plain numbers of the exact SELU, and its polynomial, shared by every backend's
implementation."""

import math

from selu_zoo.constants import SCALE_ALPHA

# SCALE * ALPHA * expm1(x) / x on [-0.5, 0] as a degree-5 polynomial in x (weighted least
# squares for relative error, 1.4e-9 in exact arithmetic). Outside (-0.5, 0) TensorFlow's Selu
# kernel is exact: for x <= -0.5, |expm1(x)| >= 0.39, so the rounding of exp(x) (absolute,
# below 6e-8) stays below 1.6e-7 relative; for x > 0 it is SCALE * x. Measured on dense scans:
# 2.1e-7 with TensorFlow kernels, 1.5e-7 under XLA (tests/test_ops.py checks 3e-7).
NEAR_ZERO_LIMIT = -0.5
SA_EXPM1_OVER_X = tuple(SCALE_ALPHA * c for c in (
    0.9999999986263878, 0.4999998074597542, 0.16666224080627143, 0.04162908902445854,
    0.008187385736655874, 0.0011216347124059587))

# SCALE * ALPHA * exp(x) == DERIVATIVE_FACTOR * exp(x + DERIVATIVE_SHIFT). The shift, log(SCALE *
# ALPHA) rounded to a multiple of 2**-17, keeps exp's result normal for x in (-87.9, -87.3] in
# float32, where exp(x) itself is subnormal and flushed to zero before the multiply. Being a
# multiple of 2**-17 (the spacing of float32 numbers in [64, 128)), x + shift is exact for
# -128 < x <= -shift, and rounds by at most 2**-25 for |x| < shift: a 3e-8 relative error.
DERIVATIVE_SHIFT = 73955 / 2**17  # 0.5642318725585938
DERIVATIVE_FACTOR = SCALE_ALPHA * math.exp(-DERIVATIVE_SHIFT)


def horner(x, coefficients):
    """``sum(c[i] * x**i)`` by Horner's rule, for a tensor of any backend; each Python float
    constant is rounded once, to x's dtype."""
    p = coefficients[-1] * x + coefficients[-2]
    for c in coefficients[-3::-1]:
        p = p * x + c
    return p
