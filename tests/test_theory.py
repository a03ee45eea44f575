"""Tests for selu_zoo.theory against independent references.

References: numerical integration (scipy.integrate.quad) of SELU against the normal
density, Monte Carlo simulation, central finite differences, and numbers from the paper
(Klambauer et al. 2017, arXiv:1706.02515). None of them reuses theory.py's closed forms.
"""

import math

import numpy as np
import pytest
from scipy import integrate

from selu_zoo import theory
from selu_zoo.constants import ALPHA, SCALE, SCALE_ALPHA

# --------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------


def selu_ref(z, scale, alpha):
    z = np.asarray(z, dtype=np.float64)
    return np.where(z > 0, scale * z, scale * alpha * np.expm1(np.minimum(z, 0.0)))


def quad_moments(m, v, scale=SCALE, alpha=ALPHA):
    """E and Var of selu(z), z ~ N(m, v), by adaptive quadrature over t = (z - m)/sqrt(v).

    The integrand is selu(m + s t) - selu(m), evaluated without cancellation (via expm1
    when both points lie on the exponential branch), and the variance integrates the
    squared deviation from the mean directly, so tiny variances are resolved too.
    """
    s = math.sqrt(v)
    kink = -m / s
    points = [p for p in (kink, 0.0) if -38.0 < p < 38.0]
    at_mean = float(selu_ref(m, scale, alpha))

    def density(t):
        return math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)

    def dev(t):  # selu(m + s t) - selu(m)
        z = m + s * t
        if z <= 0 and m <= 0:
            return scale * alpha * math.exp(m) * math.expm1(s * t)
        if z > 0 and m > 0:
            return scale * s * t
        return float(selu_ref(z, scale, alpha)) - at_mean

    opts = dict(points=points, epsabs=0.0, epsrel=1e-12, limit=400)
    # The shift can be ~0 (e.g. at the fixed point), so it also gets an absolute target.
    shift = integrate.quad(lambda t: dev(t) * density(t), -38.0, 38.0,
                           **{**opts, "epsabs": 1e-13 * scale * s, "epsrel": 1e-11})[0]
    var = integrate.quad(lambda t: (dev(t) - shift) ** 2 * density(t), -38.0, 38.0,
                         **opts)[0]
    return at_mean + shift, var


# (omega, tau, scale, alpha): the paper's normalized case, the notebook's case, and two
# arbitrary ones (including ELU, scale = alpha = 1).
WEIGHTS_AND_PARAMS = [
    (0.0, 1.0, SCALE, ALPHA),
    (1.0, 1.0, SCALE, ALPHA),
    (-0.5, 2.0, 1.2, 1.3),
    (1.5, 0.5, 1.0, 1.0),
]


# --------------------------------------------------------------------------------------
# moment_map
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [-10.0, -2.0, -0.3, 0.0, 0.7, 3.0, 10.0])
@pytest.mark.parametrize("variance", [1e-4, 0.05, 1.0, 7.0, 100.0])
def test_moment_map_matches_quadrature(mean, variance):
    for omega, tau, scale, alpha in WEIGHTS_AND_PARAMS:
        got_mean, got_var = theory.moment_map(mean, variance, omega, tau, scale, alpha)
        ref_mean, ref_var = quad_moments(mean * omega, variance * tau, scale, alpha)
        ctx = f"omega={omega}, tau={tau}, scale={scale}, alpha={alpha}"
        assert got_mean == pytest.approx(ref_mean, rel=1e-9, abs=1e-12), ctx
        assert got_var == pytest.approx(ref_var, rel=1e-9, abs=0), ctx


@pytest.mark.parametrize("m, v", [(-5.0, 1e-8), (-0.2, 1e-8), (0.0, 1e-10),
                                  (1e-5, 1e-10), (0.3, 1e-12), (-30.0, 1e-6)])
def test_moment_map_tiny_variance_is_accurate(m, v):
    # Far below the tested range: the variance must still be right, not rounding noise.
    got_mean, got_var = theory.moment_map(m, v, 1.0, 1.0)
    ref_mean, ref_var = quad_moments(m, v)
    assert got_mean == pytest.approx(ref_mean, rel=1e-9, abs=1e-15)
    assert got_var == pytest.approx(ref_var, rel=1e-8, abs=0)


@pytest.mark.parametrize("mean, variance, omega, tau", [
    (0.0, 1.0, 0.0, 1.0), (0.8, 0.6, 1.0, 1.0), (-1.5, 3.0, 1.0, 0.7), (2.0, 0.3, -1.0, 2.0),
])
def test_moment_map_matches_monte_carlo(mean, variance, omega, tau):
    rng = np.random.default_rng(1234)
    n = 1_000_000
    z = rng.normal(mean * omega, math.sqrt(variance * tau), size=n)
    y = selu_ref(z, SCALE, ALPHA)
    got_mean, got_var = theory.moment_map(mean, variance, omega, tau)
    se_mean = y.std() / math.sqrt(n)
    se_var = ((y - y.mean()) ** 2).std() / math.sqrt(n)
    assert abs(got_mean - y.mean()) < 5 * se_mean
    assert abs(got_var - y.var()) < 5 * se_var


def test_moment_map_is_vectorized_and_finite_on_the_plane():
    means = np.linspace(-10.0, 10.0, 81)[:, None]
    variances = np.geomspace(1e-4, 100.0, 61)[None, :]
    for omega, tau, scale, alpha in WEIGHTS_AND_PARAMS + [(-3.0, 5.0, SCALE, ALPHA)]:
        mu, nu = theory.moment_map(means, variances, omega, tau, scale, alpha)
        assert mu.shape == nu.shape == (81, 61)
        assert np.all(np.isfinite(mu)) and np.all(np.isfinite(nu))
        assert np.all(nu >= 0)
        # Elementwise equal to scalar calls.
        for i, j in [(0, 0), (40, 30), (80, 60), (13, 47)]:
            m1, v1 = theory.moment_map(float(means[i, 0]), float(variances[0, j]), omega,
                                       tau, scale, alpha)
            assert mu[i, j] == m1 and nu[i, j] == v1
        # SELU's range bounds the mean: E[selu] > -scale * alpha.
        assert np.all(mu > -scale * alpha)


def test_moment_map_extreme_arguments_stay_finite():
    for mean, variance in [(1e3, 1.0), (-1e3, 1.0), (0.0, 1e6), (500.0, 1e4),
                           (-500.0, 1e4), (1e3, 1e-30), (0.0, 1e-30)]:
        mu, nu = theory.moment_map(mean, variance, 1.0, 1.0)
        assert np.isfinite(mu) and np.isfinite(nu) and nu >= 0, (mean, variance)


def test_moment_map_edge_cases():
    # Zero pre-activation variance: the deterministic limit.
    mu, nu = theory.moment_map(np.array([1.0, 0.0, -1.0]), 0.0, 1.0, 1.0)
    np.testing.assert_array_equal(nu, 0.0)
    np.testing.assert_allclose(mu, selu_ref([1.0, 0.0, -1.0], SCALE, ALPHA), rtol=1e-15)
    # With omega = 0 the input mean does not matter.
    assert theory.moment_map(5.0, 2.0) == theory.moment_map(-5.0, 2.0)
    # NaN propagates, negative variance or tau raises.
    assert all(np.isnan(theory.moment_map(np.nan, 1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match="variance"):
        theory.moment_map(0.0, -1.0)
    with pytest.raises(ValueError, match="tau"):
        theory.moment_map(0.0, 1.0, 0.0, -1.0)


# --------------------------------------------------------------------------------------
# Fixed point (0, 1) and attraction
# --------------------------------------------------------------------------------------


def test_zero_one_is_a_fixed_point_of_the_default_map():
    mu, nu = theory.moment_map(0.0, 1.0)
    assert abs(mu) < 1e-12 and abs(nu - 1.0) < 1e-12
    mu, nu = quad_moments(0.0, 1.0)  # independent of theory.py
    assert abs(mu) < 1e-12 and abs(nu - 1.0) < 1e-12


@pytest.mark.parametrize("start", [(3.0, 9.0), (-1.0, 0.2), (0.5, 0.01), (-2.0, 40.0)])
def test_iterating_the_map_converges_to_zero_one(start):
    mu, nu = start
    distances = []
    for _ in range(200):
        mu, nu = theory.moment_map(mu, nu, 0.0, 1.0)
        distances.append(math.hypot(mu, nu - 1.0))
    assert abs(mu) < 1e-10 and abs(nu - 1.0) < 1e-10
    # Eventually a contraction with the rate of the Jacobian's variance entry.
    assert distances[60] / distances[59] == pytest.approx(0.782648, abs=1e-3)


def test_fixed_point_defaults_return_zero_one():
    mu, nu = theory.fixed_point()
    assert abs(mu) < 1e-12 and abs(nu - 1.0) < 1e-12
    mu, nu = theory.fixed_point(mean0=3.0, variance0=9.0)
    assert abs(mu) < 1e-12 and abs(nu - 1.0) < 1e-12
    assert isinstance(mu, float) and isinstance(nu, float)


@pytest.mark.parametrize("omega, tau, scale, alpha", [
    (0.0, 1.2, SCALE, ALPHA), (0.0, 0.8, SCALE, ALPHA), (0.3, 1.1, SCALE, ALPHA),
    (0.0, 1.0, 1.1, 1.5), (-0.2, 0.9, 1.0, 2.0),
])
def test_fixed_point_is_fixed_under_quadrature(omega, tau, scale, alpha):
    mu, nu = theory.fixed_point(omega, tau, scale, alpha)
    ref_mu, ref_nu = quad_moments(mu * omega, nu * tau, scale, alpha)
    assert ref_mu == pytest.approx(mu, rel=1e-9, abs=1e-12)
    assert ref_nu == pytest.approx(nu, rel=1e-9, abs=0)
    # And the result does not depend on the starting point.
    mu2, nu2 = theory.fixed_point(omega, tau, scale, alpha, mean0=1.0, variance0=3.0)
    assert mu2 == pytest.approx(mu, abs=1e-11)
    assert nu2 == pytest.approx(nu, rel=1e-11, abs=0)


def test_fixed_point_finds_an_unstable_fixed_point():
    # With omega = 1, tau = 1 (the notebook's case) (0, 1) is still a fixed point, but a
    # saddle: one eigenvalue of the Jacobian exceeds 1, so iterating the map leaves it.
    assert max(abs(np.linalg.eigvals(theory.jacobian(0.0, 1.0, 1.0, 1.0)))) > 1.05
    mu, nu = 0.01, 1.01
    for _ in range(100):
        mu, nu = theory.moment_map(mu, nu, 1.0, 1.0)
    assert math.hypot(mu, nu - 1.0) > 0.1
    mu, nu = theory.fixed_point(1.0, 1.0, mean0=0.1, variance0=1.1)
    assert abs(mu) < 1e-12 and abs(nu - 1.0) < 1e-12


@pytest.mark.parametrize("kwargs", [
    dict(omega=0.0, tau=3.0),  # variance explodes
    dict(omega=1.0, tau=1.0, scale=1.5),  # mean explodes
    dict(tau=0.0), dict(variance0=-1.0), dict(omega=float("nan")), dict(scale=float("inf")),
    dict(alpha="1.6"),
])
def test_fixed_point_raises_when_there_is_none(kwargs):
    with pytest.raises(ValueError):
        theory.fixed_point(**kwargs)


# --------------------------------------------------------------------------------------
# selu_parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("omega, tau", [(0.0, 1.0), (1.0, 1.0)])
def test_selu_parameters_reproduce_the_constants(omega, tau):
    scale, alpha = theory.selu_parameters(0.0, 1.0, omega, tau)
    assert abs(scale - SCALE) < 1e-12
    assert abs(alpha - ALPHA) < 1e-12
    assert isinstance(scale, float) and isinstance(alpha, float)


def test_selu_parameters_defaults_are_the_normalized_case():
    assert theory.selu_parameters() == theory.selu_parameters(0.0, 1.0, 0.0, 1.0)


@pytest.mark.parametrize("mean, variance, omega, tau", [
    (0.0, 2.0, 1.0, 1.0), (0.5, 1.5, 1.0, 1.0), (-1.0, 2.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0),
    (0.2, 0.8, 0.0, 1.0), (-0.3, 1.0, 0.0, 1.0), (0.1, 0.5, 0.0, 2.0), (0.0, 1.0, 0.5, 1.0),
])
def test_selu_parameters_make_the_target_a_fixed_point(mean, variance, omega, tau):
    scale, alpha = theory.selu_parameters(mean, variance, omega, tau)
    assert scale > 0 and alpha > 0
    ref_mean, ref_var = quad_moments(mean * omega, variance * tau, scale, alpha)
    assert ref_mean == pytest.approx(mean, abs=1e-10)
    assert ref_var == pytest.approx(variance, rel=1e-10, abs=0)


@pytest.mark.parametrize("args, named", [
    ((5.0, 1.0, 0.0, 1.0), "5.0"),  # mean too large for any alpha > 0
    ((-5.0, 1.0, 0.0, 1.0), "-5.0"),  # mean too negative
    ((0.0, -1.0, 0.0, 1.0), "-1.0"),
    ((0.0, 0.0, 0.0, 1.0), "variance=0.0"),
    ((float("nan"), 1.0, 0.0, 1.0), "nan"),
    ((0.0, float("inf"), 0.0, 1.0), "inf"),
    ((0.0, 1.0, 0.0, 0.0), "tau=0.0"),
    (("0", 1.0, 0.0, 1.0), "'0'"),
    ((0.0, None, 0.0, 1.0), "None"),
])
def test_selu_parameters_reject_bad_targets(args, named):
    with pytest.raises(ValueError) as info:
        theory.selu_parameters(*args)
    message = str(info.value)
    assert named in message and "\n" not in message


# --------------------------------------------------------------------------------------
# Jacobian
# --------------------------------------------------------------------------------------


def finite_difference_jacobian(mean, variance, *args):
    h_mean = 1e-5 * max(1.0, abs(mean))
    h_var = 1e-5 * variance

    def g(mu, nu):
        return np.array(theory.moment_map(mu, nu, *args))

    return np.column_stack([
        (g(mean + h_mean, variance) - g(mean - h_mean, variance)) / (2 * h_mean),
        (g(mean, variance + h_var) - g(mean, variance - h_var)) / (2 * h_var),
    ])


@pytest.mark.parametrize("mean", [-2.0, -0.4, 0.0, 0.2, 1.0, 3.0])
@pytest.mark.parametrize("variance", [0.01, 0.3, 1.0, 4.0, 20.0])
def test_jacobian_matches_finite_differences(mean, variance):
    for omega, tau, scale, alpha in WEIGHTS_AND_PARAMS:
        args = (omega, tau, scale, alpha)
        jac = theory.jacobian(mean, variance, *args)
        ref = finite_difference_jacobian(mean, variance, *args)
        assert jac.shape == (2, 2)
        np.testing.assert_allclose(jac, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max(),
                                   err_msg=str(args))


def test_jacobian_at_zero_one_matches_the_paper():
    jac = theory.jacobian(0.0, 1.0)
    # The paper (proof of Theorem 1): J(0, 1) = [[0, 0.088834], [0, 0.782648]],
    # spectral norm 0.7877 < 1. With omega = 0 the mean column vanishes exactly.
    assert jac[0, 0] == 0.0 and jac[1, 0] == 0.0
    assert jac[0, 1] == pytest.approx(0.088834, abs=2e-6)
    assert jac[1, 1] == pytest.approx(0.782648, abs=2e-6)
    norm = theory.jacobian_spectral_norm(0.0, 1.0)
    assert norm == pytest.approx(0.7877, abs=5e-5)
    assert norm < 1.0
    np.testing.assert_allclose(jac, finite_difference_jacobian(0.0, 1.0, 0.0, 1.0, SCALE,
                                                               ALPHA), atol=1e-9)


def test_jacobian_and_spectral_norm_are_vectorized():
    means = np.linspace(-3, 3, 7)[:, None]
    variances = np.geomspace(0.01, 10, 5)
    jac = theory.jacobian(means, variances, 0.7, 1.3)
    norm = theory.jacobian_spectral_norm(means, variances, 0.7, 1.3)
    assert jac.shape == (7, 5, 2, 2) and norm.shape == (7, 5)
    np.testing.assert_allclose(norm, np.linalg.svd(jac, compute_uv=False)[..., 0],
                               rtol=1e-13)
    np.testing.assert_array_equal(jac[2, 3], theory.jacobian(float(means[2, 0]),
                                                             float(variances[3]), 0.7, 1.3))


def test_jacobian_rejects_zero_variance():
    with pytest.raises(ValueError, match="variance"):
        theory.jacobian(0.0, 0.0)


# --------------------------------------------------------------------------------------
# Alpha dropout
# --------------------------------------------------------------------------------------

TARGETS = [(0.0, 1.0), (0.2, 0.8)]


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.5])
@pytest.mark.parametrize("mean, variance", TARGETS)
def test_alpha_dropout_monte_carlo(rate, mean, variance):
    a, b, alpha_prime = theory.alpha_dropout_parameters(rate, mean, variance)
    rng = np.random.default_rng(20170608)
    n = 1_000_000
    x = rng.normal(mean, math.sqrt(variance), size=n)
    keep = rng.random(n) >= rate
    y = a * np.where(keep, x, alpha_prime) + b
    assert abs(y.mean() - mean) < 0.01
    assert abs(y.var() - variance) < 0.02


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("mean, variance", TARGETS + [(-0.3, 1.0)])
def test_alpha_dropout_exact_moments(rate, mean, variance):
    a, b, alpha_prime = theory.alpha_dropout_parameters(rate, mean, variance)
    q = 1.0 - rate
    # Dropped-then-affine output: mixture of N(mean, variance) (prob. q) and alpha_prime.
    e_x = q * mean + (1 - q) * alpha_prime
    e_x2 = q * (variance + mean**2) + (1 - q) * alpha_prime**2
    out_mean = a * e_x + b
    out_var = a**2 * (e_x2 - e_x**2)
    assert out_mean == pytest.approx(mean, abs=1e-12)
    assert out_var == pytest.approx(variance, abs=1e-12)


def test_alpha_dropout_saturation_value():
    _, _, alpha_prime = theory.alpha_dropout_parameters(0.1)
    assert alpha_prime == -SCALE_ALPHA == -SCALE * ALPHA
    # Elsewhere alpha_prime is the saturation value of the SELU for that fixed point:
    # selu(z) -> alpha_prime as z -> -inf.
    scale, alpha = theory.selu_parameters(0.2, 0.8)
    _, _, alpha_prime = theory.alpha_dropout_parameters(0.1, 0.2, 0.8)
    saturation = float(selu_ref(-800.0, scale, alpha))
    assert alpha_prime == pytest.approx(saturation, rel=1e-15, abs=0)


@pytest.mark.parametrize("mean, variance", TARGETS)
def test_alpha_dropout_rate_zero_is_identity(mean, variance):
    a, b, alpha_prime = theory.alpha_dropout_parameters(0.0, mean, variance)
    assert (a, b) == (1.0, 0.0)
    assert all(type(x) is float for x in (a, b, alpha_prime))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), float("inf"), True, "0.1",
                                  None, [0.1], np.bool_(False)])
def test_invalid_rates_raise(rate):
    with pytest.raises(ValueError) as info:
        theory.alpha_dropout_parameters(rate)
    message = str(info.value)
    assert repr(rate) in message and "[0, 1)" in message and "\n" not in message
    with pytest.raises(ValueError, match=r"keep_rate must be a float in \[0, 1\)"):
        theory.validate_rate(rate, name="keep_rate")


@pytest.mark.parametrize("rate", [0, 0.0, 0.25, np.float32(0.5), np.float64(0.999)])
def test_validate_rate_accepts_real_numbers(rate):
    out = theory.validate_rate(rate)
    assert type(out) is float and out == float(rate)


@pytest.mark.parametrize("mean, variance", [(0.0, 0.0), (0.0, -1.0), (float("nan"), 1.0),
                                            (0.0, float("inf"))])
def test_alpha_dropout_rejects_bad_moments(mean, variance):
    with pytest.raises(ValueError):
        theory.alpha_dropout_parameters(0.1, mean, variance)
