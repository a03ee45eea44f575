"""The theory of self-normalizing networks as code (pure NumPy/SciPy).

Klambauer et al. (2017), "Self-Normalizing Neural Networks", arXiv:1706.02515.

A unit receives ``n`` inputs that are independent with mean ``mu`` and variance ``nu``
through weights ``w`` with ``omega = sum(w)`` and ``tau = sum(w**2)``. Its pre-activation
is (by the central limit theorem) ``z ~ N(mu * omega, nu * tau)`` and its output is
``selu(z)`` with::

    selu(z) = scale * z                      for z > 0
    selu(z) = scale * alpha * (exp(z) - 1)   for z <= 0

The *moment map* ``g: (mu, nu) -> (E[selu(z)], Var[selu(z)])`` (the paper's Eq. 4/5 and
the erfc expressions of its appendix) describes how the first two moments travel from
layer to layer. The paper's Theorem 1 says that for ``omega = 0, tau = 1`` and
``(scale, alpha) = (SCALE, ALPHA)`` the point ``(0, 1)`` is an attracting fixed point of
``g`` (the Jacobian there has spectral norm about 0.7877).

Public functions:

* :func:`moment_map` -- closed-form ``g`` (vectorized, numerically careful).
* :func:`jacobian`, :func:`jacobian_spectral_norm` -- the analytic Jacobian of ``g``.
* :func:`selu_parameters` -- ``(scale, alpha)`` making a given ``(mean, variance)`` a
  fixed point.
* :func:`fixed_point` -- the fixed point of ``g`` for given weights and parameters.
* :func:`alpha_dropout_parameters`, :func:`validate_rate` -- alpha dropout's affine
  correction ``(a, b)`` and saturation value ``alpha_prime``.

Implementation notes. Write ``selu = scale * f`` with ``f(z) = z`` (z > 0) and
``f(z) = alpha * expm1(z)`` (z <= 0), and let ``m = mu * omega``, ``v = nu * tau``,
``s = sqrt(v)``, ``a = m / s``. The Gaussian integrals ``E[exp(k z); z <= 0]`` are
evaluated as ``exp(k*m + k**2*v/2 + log_ndtr(-a - k*s))`` so that nothing overflows
(the log-space form of the paper's ``exp(big) * erfc(big)`` products). Moments are
taken about ``c = f(m)`` (the value at the mean of ``z``), which removes the
catastrophic cancellation of ``E[f**2] - E[f]**2`` when ``v`` is small or ``m`` is very
negative; for ``s < 0.25`` the remaining differences of exponential integrals are
replaced by their Taylor series in ``s``. The variance keeps a relative accuracy of
about 1e-14 down to tiny variances.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr, ndtr

from selu_zoo.constants import ALPHA, SCALE, SCALE_ALPHA

__all__ = [
    "alpha_dropout_parameters",
    "fixed_point",
    "jacobian",
    "jacobian_spectral_norm",
    "moment_map",
    "selu_parameters",
    "validate_rate",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SERIES_MAX_STD = 0.25  # below this pre-activation std, use the small-std series
_SERIES_TERMS = 24


# --------------------------------------------------------------------------------------
# Gaussian building blocks
# --------------------------------------------------------------------------------------


def _pieces(m, v, alpha):
    """Centered Gaussian moments of ``f`` (SELU with scale 1) for ``z ~ N(m, v)``.

    Requires ``v > 0`` elementwise. Returns a dict of broadcast arrays; see the module
    notes for the notation. With ``m' = min(m, 0)`` and ``c = f(m)``, on ``z <= 0`` one
    has ``f(z) - c = alpha * (e^z - e^{m'}) + d_neg`` and on ``z > 0``
    ``f(z) - c = (z - m) + d_pos``; at most one of ``d_neg``, ``d_pos`` is nonzero.
    """
    s = np.sqrt(v)
    a = m / s
    phi = _INV_SQRT_2PI * np.exp(-0.5 * a * a)  # density of N(0,1) at a
    p_pos = ndtr(a)  # P(z > 0)
    p_neg = ndtr(-a)  # P(z <= 0)
    m_neg = np.minimum(m, 0.0)
    em = np.exp(m_neg)  # e^{m'} <= 1
    # u_k = E[e^{k z}; z <= 0] = exp(k m + k^2 v / 2) * Phi(-a - k s), in log space.
    u1 = np.exp(m + 0.5 * v + log_ndtr(-a - s))
    u2 = np.exp(2.0 * m + 2.0 * v + log_ndtr(-a - 2.0 * s))
    e1 = u1 - em * p_neg  # E[e^z - e^{m'}; z <= 0]
    e2 = u2 - 2.0 * em * u1 + em * em * p_neg  # E[(e^z - e^{m'})^2; z <= 0]
    # For small s these differences cancel (e2 = O(v) from O(1) terms); use a series.
    small = (s < _SERIES_MAX_STD) & (a < 30.0)
    if np.any(small):
        e1_ser, e2_ser = _small_std_series(np.where(small, m, 0.0),
                                           np.where(small, s, 0.0))
        e1 = np.where(small, e1_ser, e1)
        e2 = np.where(small, e2_ser, e2)

    c = np.where(m > 0, m, alpha * np.expm1(m_neg))  # f(m)
    d_pos = m - c  # zero for m > 0
    d_neg = alpha * np.expm1(m_neg) - c  # zero for m <= 0 (equals -m for m > 0)

    # First and second moments of f - c, split into the two half-lines.
    m1_pos = s * phi + d_pos * p_pos
    m2_pos = v * (p_pos - a * phi) + 2.0 * s * d_pos * phi + d_pos * d_pos * p_pos
    m1_neg = alpha * e1 + d_neg * p_neg
    m2_neg = alpha**2 * e2 + 2.0 * alpha * d_neg * e1 + d_neg**2 * p_neg
    m1 = m1_pos + m1_neg
    m2 = m2_pos + m2_neg
    return {
        "s": s, "phi": phi, "p_pos": p_pos, "em": em, "u1": u1, "u2": u2,
        "e1": e1, "e2": e2, "c": c, "d_neg": d_neg, "m1": m1, "m1_pos": m1_pos,
        "mean": c + m1, "var": m2 - m1 * m1,
    }


def _small_std_series(m, s):
    """``E[e^z - e^{m'}; z <= 0]`` and ``E[(e^z - e^{m'})^2; z <= 0]`` for small ``s``.

    With ``z = m + s t``, ``b = -m / s`` and ``I_n = E[t^n; t <= b]`` (recursion
    ``I_n = (n - 1) I_{n-2} - b^{n-1} phi(b)``, stable for these b), the Taylor series
    ``S1 = E[e^{st} - 1; t <= b] = sum_n s^n I_n / n!`` and
    ``S2 = E[(e^{st} - 1)^2; t <= b] = sum_n (2^n - 2) s^n I_n / n!`` converge fast for
    ``s < 0.25``. For ``m <= 0`` the results are ``e^m S1`` and ``e^{2m} S2``; for
    ``m > 0`` (where ``m' = 0``) ``e^z - 1 = e^m (e^{st} - 1) + expm1(m)`` is expanded.
    Entries with ``s == 0`` give zeros (they are discarded by the caller).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(s > 0, -m / np.where(s > 0, s, 1.0), 0.0)
    phi_b = _INV_SQRT_2PI * np.exp(-0.5 * b * b)
    i_prev, i_cur = ndtr(b), -phi_b  # I_0, I_1
    tail = phi_b  # b^{n-1} phi(b), updated as n grows
    coef = s.copy()  # s^n / n!
    s1 = coef * i_cur
    s2 = np.zeros_like(s1)
    for n in range(2, _SERIES_TERMS + 1):
        tail = tail * b
        i_prev, i_cur = i_cur, (n - 1) * i_prev - tail
        coef = coef * s / n
        s1 = s1 + coef * i_cur
        s2 = s2 + (2.0**n - 2.0) * coef * i_cur
    pos = m > 0
    em = np.exp(m)  # callers pass m < 30 s < 7.5
    c = np.expm1(np.maximum(m, 0.0))  # expm1(m) for m > 0, else 0
    p_neg = ndtr(b)
    e1 = np.where(pos, em * s1 + c * p_neg, em * s1)
    e2 = np.where(pos, em * em * s2 + 2.0 * em * c * s1 + c * c * p_neg, em * em * s2)
    return e1, e2


def _show(value, bad):
    """One-line rendering of ``value``: itself if scalar, else its first ``bad`` entry."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(value)
    return f"an array with entry {float(arr[np.broadcast_to(bad, arr.shape)].flat[0])!r}"


def _check_nonnegative(name, value):
    bad = np.asarray(value) < 0
    if np.any(bad):
        raise ValueError(f"{name} must be >= 0, got {_show(value, bad)}")


def _as_scalar(x):
    """Return a NumPy scalar for 0-d arrays, the array otherwise."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


# --------------------------------------------------------------------------------------
# Moment map and Jacobian
# --------------------------------------------------------------------------------------


def moment_map(mean, variance, omega=0.0, tau=1.0, scale=SCALE, alpha=ALPHA):
    """Map the input moments ``(mean, variance)`` through one SELU layer (Eq. 4/5).

    The pre-activation is ``z ~ N(mean * omega, variance * tau)``; the result is
    ``(E[selu(z)], Var[selu(z)])``. All arguments broadcast against each other, so
    ``mean`` and ``variance`` may be grids (e.g. for drawing the (mean, variance) plane).
    Values are finite for any finite input (tested for mean in [-10, 10] and variance in
    [1e-4, 100]). NaN inputs give NaN outputs. A zero pre-activation variance gives the
    deterministic limit ``(selu(mean * omega), 0)``.

    Args:
        mean: Mean ``mu`` of the layer's inputs (scalar or array).
        variance: Variance ``nu >= 0`` of the layer's inputs (scalar or array).
        omega: Sum of the unit's incoming weights.
        tau: Sum of squares of the unit's incoming weights (``>= 0``).
        scale: SELU's ``lambda``.
        alpha: SELU's ``alpha``.

    Returns:
        Tuple ``(mean_out, variance_out)`` of NumPy scalars (scalar inputs) or arrays of
        the broadcast shape.

    Raises:
        ValueError: If ``variance`` or ``tau`` has a negative entry.
    """
    _check_nonnegative("variance", variance)
    _check_nonnegative("tau", tau)
    m, v, scale, alpha = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (
            np.multiply(mean, omega, dtype=np.float64),
            np.multiply(variance, tau, dtype=np.float64), scale, alpha)))
    zero = v == 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = _pieces(m, np.where(zero, 1.0, v), alpha)
        f_m = np.where(m > 0, m, alpha * np.expm1(np.minimum(m, 0.0)))
    mean_out = scale * np.where(zero, f_m, p["mean"])
    var_out = scale**2 * np.where(zero, 0.0, p["var"])
    return _as_scalar(mean_out), _as_scalar(var_out)


def jacobian(mean, variance, omega=0.0, tau=1.0, scale=SCALE, alpha=ALPHA):
    """Analytic Jacobian of :func:`moment_map` with respect to ``(mean, variance)``.

    Derived with the Gaussian identities ``d/dm E[h(z)] = E[h'(z)]`` and
    ``d/dv E[h(z)] = E[h''(z)] / 2`` (``z ~ N(m, v)``), where the kink of SELU at 0
    (slope ``scale`` on the right, ``scale * alpha`` on the left) contributes a delta
    term ``(1 - alpha) * density(0)`` to ``f''``.

    Args:
        mean: Mean of the inputs (scalar or array).
        variance: Variance of the inputs (scalar or array, ``variance * tau > 0``).
        omega: Sum of the incoming weights.
        tau: Sum of squares of the incoming weights.
        scale: SELU's ``lambda``.
        alpha: SELU's ``alpha``.

    Returns:
        Array of shape ``broadcast_shape + (2, 2)``; ``J[..., i, j]`` is the derivative
        of output ``i`` (0: mean, 1: variance) by input ``j``. A single ``(2, 2)``
        array for scalar inputs.

    Raises:
        ValueError: If the pre-activation variance ``variance * tau`` is not positive
            somewhere (the map is not differentiable in the variance there).
    """
    v_in = np.multiply(variance, tau, dtype=np.float64)
    bad = ~(v_in > 0)
    if np.any(bad):
        shown = (f"variance={variance!r}, tau={tau!r}" if v_in.ndim == 0 else
                 f"variance * tau = {float(v_in[bad].flat[0])!r} somewhere")
        raise ValueError(f"jacobian needs variance * tau > 0, got {shown}")
    m, v, omega, tau, scale, alpha = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (
            np.multiply(mean, omega, dtype=np.float64), v_in, omega, tau, scale,
            alpha)))
    p = _pieces(m, v, alpha)
    em, u1, u2 = p["em"], p["u1"], p["u2"]
    p0 = p["phi"] / p["s"]  # density of z at 0
    jump = (1.0 - alpha) * p0  # delta part of E[f'']
    f2_reg = alpha * u1  # E[f''; z < 0] = E[f'; z <= 0]
    df_mean = p["p_pos"] + f2_reg  # E[f']
    # E[(f - c) f'] restricted to z <= 0 (also equals E[(f - c) f''_regular]).
    cov_neg = alpha**2 * (u2 - em * u1) + alpha * p["d_neg"] * u1
    ef_sq = p["p_pos"] + alpha**2 * u2  # E[f'^2]

    dmean_dm = df_mean
    dmean_dv = 0.5 * (f2_reg + jump)
    dvar_dm = 2.0 * (p["m1_pos"] + cov_neg - p["m1"] * df_mean)
    dvar_dv = ef_sq + cov_neg - p["m1"] * f2_reg - jump * p["mean"]

    jac = np.empty(m.shape + (2, 2))
    jac[..., 0, 0] = scale * omega * dmean_dm
    jac[..., 0, 1] = scale * tau * dmean_dv
    jac[..., 1, 0] = scale**2 * omega * dvar_dm
    jac[..., 1, 1] = scale**2 * tau * dvar_dv
    return jac


def jacobian_spectral_norm(mean, variance, omega=0.0, tau=1.0, scale=SCALE,
                           alpha=ALPHA):
    """Largest singular value of :func:`jacobian` (the paper reports 0.7877 at (0, 1)).

    Args:
        mean, variance, omega, tau, scale, alpha: As for :func:`jacobian`.

    Returns:
        The spectral norm: a NumPy scalar for scalar inputs, else an array of the
        broadcast shape.

    Raises:
        ValueError: As for :func:`jacobian`.
    """
    jac = jacobian(mean, variance, omega, tau, scale, alpha)
    p, q, r, t = jac[..., 0, 0], jac[..., 0, 1], jac[..., 1, 0], jac[..., 1, 1]
    # Closed form for 2x2 matrices: sigma_max = (|(p+t, r-q)| + |(p-t, r+q)|) / 2.
    return _as_scalar(0.5 * (np.hypot(p + t, r - q) + np.hypot(p - t, r + q)))


# --------------------------------------------------------------------------------------
# Solvers
# --------------------------------------------------------------------------------------


def _finite_reals(**values):
    """Return the values as floats; raise ValueError if one is not a finite real."""
    out = []
    for name, value in values.items():
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
                or not math.isfinite(value)):
            raise ValueError(f"{name} must be a finite real number, got {value!r}")
        out.append(float(value))
    return out


def selu_parameters(mean=0.0, variance=1.0, omega=0.0, tau=1.0):
    """Solve for the SELU ``(scale, alpha)`` that make ``(mean, variance)`` a fixed point.

    The pre-activation is ``z ~ N(mean * omega, variance * tau)``. ``omega=0, tau=1`` is
    the paper's normalized-weight case; ``omega=1, tau=1`` means pre-activations
    distributed as ``N(mean, variance)`` (the authors' parameter notebook). For
    ``(0, 1)`` both give ``(SCALE, ALPHA)``.

    Method: with ``f_alpha`` the SELU of scale 1, the ratio
    ``r(alpha) = E[f_alpha(z)] / std[f_alpha(z)]`` is strictly decreasing in
    ``alpha > 0`` (its derivative's numerator is a sum of negative terms), so the mean
    equation ``r(alpha) = mean / sqrt(variance)`` has at most one root, found by
    bracketing and Brent's method; then ``scale = sqrt(variance / Var[f_alpha(z)])``.
    The result is checked against :func:`moment_map`.

    Args:
        mean: Target mean.
        variance: Target variance (``> 0``).
        omega: Sum of the incoming weights.
        tau: Sum of squares of the incoming weights (``> 0``).

    Returns:
        Tuple ``(scale, alpha)`` of Python floats, both positive.

    Raises:
        ValueError: If an argument is not a finite real, ``variance <= 0`` or
            ``tau <= 0``, or no ``alpha > 0`` reaches the target (e.g. ``mean`` too large
            or too negative relative to ``sqrt(variance)``).
    """
    mean, variance, omega, tau = _finite_reals(
        mean=mean, variance=variance, omega=omega, tau=tau)
    if variance <= 0 or tau <= 0:
        raise ValueError(
            f"selu_parameters needs variance > 0 and tau > 0, got variance={variance!r}, "
            f"tau={tau!r}")
    target = mean / math.sqrt(variance)

    def moments(alpha):
        return moment_map(mean, variance, omega, tau, 1.0, alpha)

    def ratio_gap(alpha):
        mu, var = moments(alpha)
        return float(mu / math.sqrt(var)) - target

    fail = (f"no SELU parameters make (mean={mean!r}, variance={variance!r}) a fixed point "
            f"for omega={omega!r}, tau={tau!r}")
    if not ratio_gap(0.0) > 0:
        raise ValueError(fail + " (mean too large for alpha > 0)")
    hi = 1.0
    while ratio_gap(hi) > 0:
        hi *= 2.0
        if hi > 1e8:
            raise ValueError(fail + " (mean too negative)")
    alpha = optimize.brentq(ratio_gap, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps,
                            maxiter=500)
    scale = math.sqrt(variance / float(moments(alpha)[1]))
    mu_out, var_out = moment_map(mean, variance, omega, tau, scale, alpha)
    if not (abs(mu_out - mean) <= 1e-9 * (1.0 + abs(mean))
            and abs(var_out - variance) <= 1e-9 * variance):
        raise ValueError(fail + f" (solver stopped at scale={scale!r}, alpha={alpha!r})")
    return scale, float(alpha)


def fixed_point(omega=0.0, tau=1.0, scale=SCALE, alpha=ALPHA, mean0=0.0, variance0=1.0):
    """Find the fixed point of :func:`moment_map` for given weights and SELU parameters.

    Iterates the map from ``(mean0, variance0)`` (which converges when the fixed point is
    attracting, as the paper proves near ``(0, 1)``), then polishes the last iterate with
    a Newton-type root finder using the analytic :func:`jacobian`. If the iteration does
    not settle, the root finder starts from ``(mean0, variance0)`` instead, so an
    unstable fixed point can also be returned; check :func:`jacobian_spectral_norm`
    for stability.

    Args:
        omega: Sum of the incoming weights.
        tau: Sum of squares of the incoming weights (``> 0``).
        scale: SELU's ``lambda``.
        alpha: SELU's ``alpha``.
        mean0: Starting mean.
        variance0: Starting variance (``> 0``).

    Returns:
        Tuple ``(mean, variance)`` of Python floats with ``variance > 0``.

    Raises:
        ValueError: If an argument is not a finite real, ``tau <= 0`` or
            ``variance0 <= 0``, or no fixed point with positive variance is found.
    """
    omega, tau, scale, alpha, mean0, variance0 = _finite_reals(
        omega=omega, tau=tau, scale=scale, alpha=alpha, mean0=mean0, variance0=variance0)
    if tau <= 0 or variance0 <= 0:
        raise ValueError(
            f"fixed_point needs tau > 0 and variance0 > 0, got tau={tau!r}, "
            f"variance0={variance0!r}")
    args = (omega, tau, scale, alpha)
    start = np.array([mean0, variance0])

    x = start
    settled = False
    for _ in range(5000):
        x_new = np.array(moment_map(x[0], x[1], *args), dtype=np.float64)
        if not (np.all(np.isfinite(x_new)) and 0 < x_new[1] < 1e12):
            break
        step = np.max(np.abs(x_new - x))
        x = x_new
        if step <= 1e-13 * (1.0 + np.max(np.abs(x))):
            settled = True
            break

    def residual(y):
        if not y[1] > 0:
            return np.array([np.nan, np.nan])
        return np.array(moment_map(y[0], y[1], *args), dtype=np.float64) - y

    def residual_jac(y):
        if not y[1] > 0:
            return np.full((2, 2), np.nan)
        return jacobian(y[0], y[1], *args) - np.eye(2)

    with np.errstate(all="ignore"):
        sol = optimize.root(residual, x if settled else start, jac=residual_jac,
                            method="hybr", options={"xtol": 1e-15})
    y = sol.x
    res = residual(y)
    if not (y[1] > 0 and np.all(np.abs(res) <= 1e-12 * (1.0 + np.abs(y)))):
        raise ValueError(
            f"fixed_point did not converge for omega={omega!r}, tau={tau!r}, "
            f"scale={scale!r}, alpha={alpha!r} from ({mean0!r}, {variance0!r})")
    return float(y[0]), float(y[1])


# --------------------------------------------------------------------------------------
# Alpha dropout
# --------------------------------------------------------------------------------------


def validate_rate(rate, name="rate"):
    """Check a dropout rate: a real number (not a bool) in ``[0, 1)``.

    Args:
        rate: The value to check.
        name: Name used in the error message.

    Returns:
        ``rate`` as a Python float.

    Raises:
        ValueError: If ``rate`` is a bool, not a real number, NaN, infinite, negative or
            ``>= 1``; the message names the value and the allowed range.
    """
    if (isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real)
            or not 0.0 <= float(rate) < 1.0):
        raise ValueError(f"{name} must be a float in [0, 1), got {rate!r}")
    return float(rate)


def alpha_dropout_parameters(rate, mean=0.0, variance=1.0):
    """Alpha dropout's saturation value and affine correction (paper, Sec. "Alpha dropout").

    Dropped units are set to ``alpha_prime = -scale * alpha`` (SELU's negative
    saturation value for the parameters of :func:`selu_parameters`), kept ones (with
    probability ``q = 1 - rate``) pass unchanged, and ``a * x + b`` restores the mean
    and variance::

        a = sqrt(variance / (q * ((1 - q) * (alpha_prime - mean)**2 + variance)))
        b = mean - a * (q * mean + (1 - q) * alpha_prime)

    For ``(mean, variance) == (0, 1)`` ``alpha_prime`` is ``-SCALE_ALPHA`` from
    :mod:`selu_zoo.constants` exactly.

    Args:
        rate: Drop probability in ``[0, 1)``.
        mean: Mean of the activations (the fixed point's mean).
        variance: Variance of the activations (``> 0``).

    Returns:
        Tuple ``(a, b, alpha_prime)`` of Python floats; ``rate=0`` gives
        ``(1.0, 0.0, alpha_prime)``.

    Raises:
        ValueError: If ``rate`` is invalid (see :func:`validate_rate`), ``mean`` or
            ``variance`` is not a finite real, ``variance <= 0``, or
            :func:`selu_parameters` has no solution for ``(mean, variance)``.
    """
    rate = validate_rate(rate)
    mean, variance = _finite_reals(mean=mean, variance=variance)
    if variance <= 0:
        raise ValueError(f"variance must be > 0, got {variance!r}")
    if mean == 0.0 and variance == 1.0:
        alpha_prime = -SCALE_ALPHA
    else:
        scale, alpha = selu_parameters(mean, variance)
        alpha_prime = -scale * alpha
    q = 1.0 - rate
    a = math.sqrt(variance / (q * ((1.0 - q) * (alpha_prime - mean) ** 2 + variance)))
    b = mean - a * (q * mean + (1.0 - q) * alpha_prime)
    return float(a), float(b), float(alpha_prime)


# --------------------------------------------------------------------------------------
# Theorem 1's domain
# --------------------------------------------------------------------------------------

# Theorem 1 of the paper: for weights with omega in [-0.1, 0.1] and tau in [0.95, 1.1], the
# moment map sends mean in [-0.1, 0.1], variance in [0.8, 1.5] into itself and is a
# contraction there, so activations inside this box are drawn to the fixed point near
# (0, 1). tests/test_theory.py checks both claims on a grid with `moment_map` and
# `jacobian_spectral_norm`.
THEOREM1_MEAN = (-0.1, 0.1)
THEOREM1_VARIANCE = (0.8, 1.5)


def in_theorem1_domain(mean, variance):
    """Whether activation moments lie in the domain of the paper's Theorem 1.

    Inside it (`THEOREM1_MEAN` x `THEOREM1_VARIANCE`) the moment map contracts to the fixed
    point near (0, 1), for weights near the initialization's (``omega`` within 0.1 of 0,
    ``tau`` in [0.95, 1.1]); outside, the theorem says nothing.

    Args:
        mean: a layer's activation mean.
        variance: its activation variance.

    Returns:
        A bool; False for NaN.
    """
    return bool(THEOREM1_MEAN[0] <= mean <= THEOREM1_MEAN[1]
                and THEOREM1_VARIANCE[0] <= variance <= THEOREM1_VARIANCE[1])
