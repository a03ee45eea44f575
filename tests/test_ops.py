"""selu_zoo.ops against float64 NumPy references, in eager, graph and XLA modes."""

import contextlib
import functools

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

from selu_zoo import ALPHA, SCALE, ops
from tests.conftest import EXECUTION_MODES, NUMPY_DTYPES

SPECIAL_INPUTS = [-1e-10, -1e-8, -1e-6, -20.0, -88.0, -100.0, 88.0, 89.0, 1e4,
                  np.inf, -np.inf, np.nan, 0.0, -0.0]
F32_TINY = np.finfo(np.float32).tiny


def selu_reference(x):
    """The paper's SELU in float64 NumPy."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        return np.where(x > 0, SCALE * x, SCALE * ALPHA * np.expm1(np.minimum(x, 0.0)))


def selu_derivative_reference(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, SCALE, SCALE * ALPHA * np.exp(np.minimum(x, 0.0)))


def float32_inputs():
    """The issue's special values plus a dense sweep of magnitudes of both signs."""
    magnitudes = np.logspace(-30, 4, 400)
    rng = np.random.default_rng(0)
    values = np.concatenate([SPECIAL_INPUTS, magnitudes, -magnitudes, rng.normal(0, 3, 1000)])
    return values.astype(np.float32)


def ulp_window(center, half_width=1 << 16):
    """Every float32 within ``half_width`` ulps of ``center`` (consecutive bit patterns)."""
    bits = np.array(center, np.float32).view(np.int32)
    return (bits + np.arange(-half_width, half_width, dtype=np.int32)).view(np.float32)


def floats_between(low, high):
    """Every float32 in [low, high] (both negative)."""
    start, stop = np.array([high, low], np.float32).view(np.int32)
    return np.arange(start, stop + 1, dtype=np.int32).view(np.float32)


@functools.lru_cache(maxsize=1)
def dense_scan():
    """1.1M float32 values, one tensor, so TensorFlow takes its vectorized kernels.

    Issue 14's scan (evenly over [-1, -1e-4], log-spaced magnitudes down to 1e-30, evenly over
    [-88, 88]) at a third of its density, plus every float32 near the worst points of the
    forms this package used before (found by an exhaustive run over all negative float32):
    TensorFlow's vectorized Expm1 kernel (3.95e-7 at -0.3452), XLA's expm1 (4.05e-7 at
    -0.0103), the polynomial / Selu kernel boundary at -0.5, and the band (-87.92, -87.33]
    where exp(x) is subnormal but the gradient is not.
    """
    return np.concatenate([
        -np.linspace(1e-4, 1.0, 330_000), -np.logspace(-30, 0, 170_000),
        np.linspace(-88.0, 88.0, 170_000),
        ulp_window(-0.345233709), ulp_window(-0.0103134988), ulp_window(-0.5),
        floats_between(-87.92, -87.33),
    ]).astype(np.float32)


def assert_relative_close(actual, reference, rtol, tiny):
    """Relative error <= rtol where the reference is normal; exact for 0, inf and NaN."""
    actual = np.asarray(actual, np.float64)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(reference))
    finite = np.isfinite(reference)
    np.testing.assert_array_equal(actual[~finite & ~np.isnan(reference)],
                                  reference[~finite & ~np.isnan(reference)])
    zero = reference == 0
    np.testing.assert_array_equal(actual[zero], 0.0)
    normal = finite & (np.abs(reference) >= tiny)
    rel = np.abs(actual[normal] - reference[normal]) / np.abs(reference[normal])
    worst = np.argmax(rel)
    assert rel[worst] <= rtol, (
        f"relative error {rel[worst]:.3g} > {rtol:g} at reference {reference[normal][worst]!r}")


def forward_and_gradient(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.selu(x)
    return y, tape.gradient(y, x)


def test_float32_forward_and_gradient_within_3e7(run_mode):
    x = float32_inputs()
    y, dy = run_mode(forward_and_gradient)(tf.constant(x))
    x64 = x.astype(np.float64)
    assert_relative_close(y.numpy(), selu_reference(x64), 3e-7, F32_TINY)
    assert_relative_close(dy.numpy(), selu_derivative_reference(x64), 3e-7, F32_TINY)


def test_float32_forward_and_gradient_within_3e7_on_a_dense_scan(run_mode):
    """Every normal result within 3e-7, on one large tensor (TensorFlow's vectorized kernels)."""
    x = dense_scan()
    y, dy = run_mode(forward_and_gradient)(tf.constant(x))
    x64 = x.astype(np.float64)
    assert_relative_close(y.numpy(), selu_reference(x64), 3e-7, F32_TINY)
    assert_relative_close(dy.numpy(), selu_derivative_reference(x64), 3e-7, F32_TINY)


def test_tiny_negative_input_is_exact_where_tf_nn_selu_is_not():
    x = tf.constant([-1e-8], tf.float32)
    assert tf.nn.selu(x).numpy()[0] == 0.0  # the fault this package exists to fix
    np.testing.assert_allclose(ops.selu(x).numpy(), selu_reference([-1e-8]), rtol=3e-7)


def test_gradient_is_not_flushed_where_exp_alone_is_subnormal(run_mode):
    x = floats_between(-87.90, -87.34)  # exp(x) < 2**-126 <= SCALE * ALPHA * exp(x)
    assert np.all(np.exp(x.astype(np.float64)) < F32_TINY)
    assert np.all(selu_derivative_reference(x.astype(np.float64)) >= F32_TINY)
    _, dy = run_mode(forward_and_gradient)(tf.constant(x))
    np.testing.assert_allclose(dy.numpy(), selu_derivative_reference(x.astype(np.float64)),
                               rtol=3e-7)


def test_subnormal_inputs_are_read_as_zero(run_mode):
    """The documented exception: TensorFlow flushes subnormals to zero on its threads."""
    x = np.full(64, -1e-39, np.float32)  # subnormal: selu(x) would be -1.8e-39, subnormal too
    y, _ = run_mode(forward_and_gradient)(tf.constant(x))
    np.testing.assert_array_equal(y.numpy(), 0.0)


def _ulp(reference, np_dtype):
    """One unit in the last place of ``np_dtype`` at each (normal) reference value."""
    finfo = ml_dtypes.finfo(np_dtype)
    exponent = np.floor(np.log2(np.abs(reference)))
    return np.exp2(exponent - finfo.nmant)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_types_within_one_ulp_for_every_value(dtype, run_mode):
    """Every finite float16 / bfloat16 input: forward and gradient within one ulp.

    Except bfloat16's subnormals, which are float32 subnormals too (the flush-to-zero
    exception; float16's subnormals are normal float32 numbers).
    """
    np_dtype = NUMPY_DTYPES[dtype]
    x = np.arange(1 << 16, dtype=np.uint16).view(np_dtype)
    with np.errstate(invalid="ignore"):  # casting NaN bit patterns
        magnitude = np.abs(x.astype(np.float64))
    x = x[np.isfinite(magnitude) & ((magnitude == 0) | (magnitude >= F32_TINY))]
    y, dy = run_mode(forward_and_gradient)(tf.constant(x, dtype))
    assert y.dtype == dtype and dy.dtype == dtype
    finfo = ml_dtypes.finfo(np_dtype)
    x64 = x.astype(np.float64)
    for actual, reference in ((y, selu_reference(x64)), (dy, selu_derivative_reference(x64))):
        actual = actual.numpy().astype(np.float64)
        normal = (np.abs(reference) >= float(finfo.tiny)) & (np.abs(reference) <= float(finfo.max))
        error = np.abs(actual[normal] - reference[normal]) / _ulp(reference[normal], np_dtype)
        worst = np.argmax(error)
        assert error[worst] <= 1.0, (
            f"{error[worst]:.3g} ulp at x={x64[normal][worst]!r}")


def test_float64_keeps_dtype_and_rounds_correctly(run_mode):
    x = float32_inputs().astype(np.float64)
    y, dy = run_mode(forward_and_gradient)(tf.constant(x))
    assert y.dtype == "float64" and dy.dtype == "float64"
    rtol = 4 * np.finfo(np.float64).eps
    tiny = float(np.finfo(np.float64).tiny)
    assert_relative_close(y.numpy(), selu_reference(x), rtol, tiny)
    assert_relative_close(dy.numpy(), selu_derivative_reference(x), rtol, tiny)


def test_derivative_at_zero_is_scale_times_alpha(run_mode):
    _, dy = run_mode(forward_and_gradient)(tf.constant([0.0, -0.0], tf.float32))
    np.testing.assert_allclose(dy.numpy(), [SCALE * ALPHA] * 2, rtol=1e-7)


def test_gradient_matches_numerical_jacobian():
    x = tf.constant([-5.0, -1.3, -0.2, 0.4, 2.5], tf.float64)
    theoretical, numerical = tf.test.compute_gradient(ops.selu, [x])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-8)


def test_second_order_gradient():
    x = tf.constant([-3.0, -1.0, -0.1, 0.5, 4.0], tf.float64)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = ops.selu(x)
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x).numpy()
    expected = np.where(x.numpy() > 0, 0.0, SCALE * ALPHA * np.exp(x.numpy()))
    np.testing.assert_allclose(d2y, expected, rtol=1e-12)


def test_rejects_integer_input():
    with pytest.raises(TypeError, match="floating-point"):
        ops.selu(tf.constant([1, 2]))


def test_selu_derivative_function():
    for x in (float32_inputs(), dense_scan()):
        assert_relative_close(ops.selu_derivative(tf.constant(x)).numpy(),
                              selu_derivative_reference(x.astype(np.float64)), 3e-7, F32_TINY)


# --- selu_dense ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(16, 7), (3, 5, 7)])
def test_selu_dense_forward_and_gradients_match_float64_reference(shape, run_mode):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)
    kernel = rng.normal(size=(7, 4)) / np.sqrt(7)
    bias = rng.normal(size=(4,))
    upstream = rng.normal(size=shape[:-1] + (4,))

    def fn(x, kernel, bias):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel, bias])
            y = ops.selu_dense(x, kernel, bias)
            loss = tf.reduce_sum(y * upstream)
        return (y, *tape.gradient(loss, [x, kernel, bias]))

    y, dx, dk, db = run_mode(fn)(*(tf.constant(v, tf.float32) for v in (x, kernel, bias)))
    z = x @ kernel + bias
    dz = upstream * selu_derivative_reference(z)
    x2, dz2 = x.reshape(-1, 7), dz.reshape(-1, 4)
    np.testing.assert_allclose(y.numpy(), selu_reference(z), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(dx.numpy(), dz @ kernel.T, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(dk.numpy(), x2.T @ dz2, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(db.numpy(), dz2.sum(0), rtol=2e-5, atol=1e-5)


def test_selu_dense_without_bias():
    x = tf.random.stateless_normal([4, 3], seed=[1, 2])
    kernel = tf.random.stateless_normal([3, 2], seed=[3, 4])
    np.testing.assert_allclose(ops.selu_dense(x, kernel).numpy(),
                               selu_reference((x @ kernel).numpy()), rtol=1e-5, atol=1e-6)


# --- alpha_dropout ---------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.5])
def test_alpha_dropout_keeps_standard_moments(rate):
    x = tf.random.stateless_normal([1_000_000], seed=[0, 1])
    y = ops.alpha_dropout(x, rate, seed=7).numpy().astype(np.float64)
    assert abs(y.mean()) < 0.01
    assert abs(y.var() - 1.0) < 0.02


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_alpha_dropout_keeps_nonstandard_fixed_point(rate):
    mean, variance = 0.3, 1.6
    x = mean + np.sqrt(variance) * tf.random.stateless_normal([1_000_000], seed=[2, 3])
    y = ops.alpha_dropout(x, rate, seed=11, mean=mean, variance=variance).numpy()
    assert abs(y.mean() - mean) < 0.01
    assert abs(y.var() / variance - 1.0) < 0.02


def test_alpha_dropout_drops_the_expected_fraction_to_one_value():
    x = tf.random.stateless_normal([200_000], seed=[5, 6])
    y = ops.alpha_dropout(x, 0.25, seed=3).numpy()
    values, counts = np.unique(y, return_counts=True)
    assert abs(counts.max() / y.size - 0.25) < 0.005  # the dropped value is the mode


def test_alpha_dropout_int_seed_is_reproducible_and_seeds_differ():
    x = tf.ones([1000])
    a = ops.alpha_dropout(x, 0.5, seed=1).numpy()
    np.testing.assert_array_equal(a, ops.alpha_dropout(x, 0.5, seed=1).numpy())
    assert not np.array_equal(a, ops.alpha_dropout(x, 0.5, seed=2).numpy())


def test_alpha_dropout_noise_shape_with_none_shares_mask():
    x = tf.ones([4, 6, 5])
    y = ops.alpha_dropout(x, 0.5, seed=3, noise_shape=(None, 1, None)).numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    assert len(np.unique(y)) == 2


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_alpha_dropout_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="rate"):
        ops.alpha_dropout(tf.ones([3]), rate, seed=0)


def test_alpha_dropout_keeps_dtype_and_gradient_is_a_times_mask(run_mode):
    from selu_zoo import theory

    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = ops.alpha_dropout(x, 0.3, seed=4)
        return y, tape.gradient(y, x)

    for dtype in ("float16", "bfloat16", "float32"):
        y, dy = run_mode(fn)(tf.ones([1000], dtype))
        assert y.dtype == dtype
        a, _, _ = theory.alpha_dropout_parameters(0.3)
        kept = dy.numpy().astype(np.float64) != 0
        assert 0.6 < kept.mean() < 0.8
        np.testing.assert_allclose(dy.numpy().astype(np.float64)[kept], a, rtol=1e-2)


# --- the fast dropout path: mask generator, quantized rate, fused SELU + alpha dropout -------

def _dropped_mask(y, rate):
    """Which units alpha_dropout set to its dropped value."""
    from selu_zoo import theory

    a, b, alpha_prime = theory.alpha_dropout_parameters(
        1 - ops.alpha_dropout_keep_probability(rate))
    return np.isclose(np.asarray(y, np.float64), a * alpha_prime + b, rtol=0, atol=1e-6)


def test_keep_probability_is_rate_quantized_to_2_pow_31():
    for rate in (0.05, 0.1, 0.5, 1e-9, 0.999):
        q = ops.alpha_dropout_keep_probability(rate)
        assert abs((1 - q) - rate) <= 2.0**-32 or rate < 2.0**-31
        assert (1 - q) * 2**31 == round((1 - q) * 2**31)  # a multiple of 2**-31
    assert 0 < 1 - ops.alpha_dropout_keep_probability(1e-12) <= 2.0**-31  # never 0 for rate > 0


def test_alpha_dropout_same_mask_in_every_mode(run_mode):
    x = tf.random.stateless_normal([64, 33], seed=[1, 2])
    expected = ops.alpha_dropout(x, 0.3, seed=5).numpy()
    np.testing.assert_array_equal(
        run_mode(lambda x: ops.alpha_dropout(x, 0.3, seed=5))(x).numpy(), expected)


def test_alpha_dropout_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        ops.alpha_dropout(tf.ones([3]), 0.5, seed=tf.constant([1, 2, 3]))


def _selu_alpha_dropout_and_gradient(x, rate=0.2, seed=9, **kwargs):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.selu_alpha_dropout(x, rate, seed, **kwargs)
    return y, tape.gradient(y, x)


def test_fused_selu_is_exact_in_float32():
    """The fused training SELU (exp plus a polynomial near 0) against float64, under XLA."""
    from selu_zoo.ops.tensorflow_ops import _selu_and_derivative

    rng = np.random.default_rng(3)
    x = np.concatenate([float32_inputs(), -rng.uniform(0, 3, 200_000), dense_scan(),
                        -np.logspace(-37.9, 1.9, 20_000), [-0.7, np.nextafter(-0.7, 0)]])
    x = x.astype(np.float32)
    x64 = x.astype(np.float64)
    for factor in (1.0, 1.07):  # the dropout's a; its exp is shifted for factor 1
        h, slope = tf.function(_selu_and_derivative, jit_compile=True)(tf.constant(x), factor)
        assert_relative_close(h.numpy(), factor * selu_reference(x64), 3e-7, F32_TINY)
        assert_relative_close(slope.numpy(), factor * selu_derivative_reference(x64), 3e-7,
                              factor * F32_TINY)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_selu_alpha_dropout_is_alpha_dropout_of_selu(dtype, run_mode):
    from selu_zoo import theory

    rate = 0.2
    x = tf.constant(float32_inputs()[np.isfinite(float32_inputs())][:1200].clip(-30, 30), dtype)
    y, dx = run_mode(_selu_alpha_dropout_and_gradient)(x)
    assert y.dtype == dtype and dx.dtype == dtype
    a, b, alpha_prime = theory.alpha_dropout_parameters(1 - ops.alpha_dropout_keep_probability(rate))
    x64 = x.numpy().astype(np.float64)
    y64, dx64 = y.numpy().astype(np.float64), dx.numpy().astype(np.float64)
    # the mask is alpha_dropout's for that seed: the dropout ops share one generator
    dropped = _dropped_mask(ops.alpha_dropout(tf.zeros(x.shape), rate, seed=9), rate)
    assert 0.1 < dropped.mean() < 0.3
    np.testing.assert_array_equal(dx64[dropped], 0.0)
    finfo = ml_dtypes.finfo(NUMPY_DTYPES[dtype])
    eps, tiny = float(finfo.eps), float(finfo.tiny)  # below tiny, float16 is subnormal
    np.testing.assert_allclose(y64[dropped], a * alpha_prime + b, rtol=eps)
    np.testing.assert_allclose(y64[~dropped], a * selu_reference(x64[~dropped]) + b,
                               rtol=2 * eps, atol=2 * eps)
    np.testing.assert_allclose(dx64[~dropped], a * selu_derivative_reference(x64[~dropped]),
                               rtol=2 * eps, atol=tiny)


def test_selu_alpha_dropout_gradient_matches_numerical_jacobian():
    x = tf.constant([-5.0, -1.3, -0.2, 0.4, 2.5, -0.01, 0.7, 1.1], tf.float64)
    theoretical, numerical = tf.test.compute_gradient(
        lambda x: ops.selu_alpha_dropout(x, 0.4, seed=3), [x])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-8)


def test_selu_alpha_dropout_keeps_the_fixed_point():
    x = tf.random.stateless_normal([1_000_000], seed=[8, 9])  # selu(x) has mean 0, variance 1
    y = ops.selu_alpha_dropout(x, 0.1, seed=4).numpy().astype(np.float64)
    reference = ops.selu(x).numpy().astype(np.float64)
    assert abs(y.mean() - reference.mean()) < 0.01
    assert abs(y.var() / reference.var() - 1.0) < 0.02


def test_selu_alpha_dropout_noise_shape_and_rate_checks():
    y = ops.selu_alpha_dropout(tf.ones([4, 6, 5]), 0.5, seed=3, noise_shape=(None, 1, None))
    y = y.numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    with pytest.raises(ValueError, match="rate"):
        ops.selu_alpha_dropout(tf.ones([3]), 0.0, seed=1)
    with pytest.raises(ValueError, match="noise_shape"):
        ops.selu_alpha_dropout(tf.ones([3, 2]), 0.1, seed=1, noise_shape=(None,))


def _both_dropouts_and_gradient(x):
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        h = ops.selu_alpha_dropout(x, 0.2, seed=7)
        y = ops.alpha_dropout(x, 0.3, seed=8, noise_shape=(None, 1))
    return h, y, tape.gradient(h, x), tape.gradient(y, x)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dropout_ops_agree_in_every_mode(dtype):
    """Eager, graph and XLA: the same masks, and values and gradients within two ulps (the
    compiler may fuse a multiply-add inside an outer XLA computation and not alone; each is
    exact to 3e-7)."""
    x = tf.cast(tf.random.stateless_normal([300, 130], seed=[3, 4]) * 3, dtype)
    expected = [t.numpy() for t in _both_dropouts_and_gradient(x)]
    eps = float(ml_dtypes.finfo(NUMPY_DTYPES[dtype]).eps)
    for mode in ("graph", "xla"):
        actual = [t.numpy() for t in EXECUTION_MODES[mode](_both_dropouts_and_gradient)(x)]
        for gradient, reference in zip(actual[2:], expected[2:]):  # the dropped units
            np.testing.assert_array_equal(gradient == 0, reference == 0)
        for value, reference in zip(actual, expected):
            np.testing.assert_allclose(value.astype(np.float64), reference.astype(np.float64),
                                       rtol=2 * eps, atol=0)


def _compiled_calls(fn, *args):
    """How many XLA-compiled functions a traced (not compiled) ``fn`` calls."""
    graph_def = tf.function(fn, autograph=False).get_concrete_function(*args).graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return sum(n.attr["_XlaMustCompile"].b for n in nodes)


def test_dropout_ops_launch_xla_once_per_call_outside_xla():
    x = tf.ones([8, 4])
    assert _compiled_calls(_both_dropouts_and_gradient, x) == 2  # one per op, gradient included


# --- serving lowerings -----------------------------------------------------------------------


def _graph_ops(concrete_function):
    """Op types of a traced function and of every function in its library."""
    graph_def = concrete_function.graph.as_graph_def()
    ops_ = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops_ |= {node.op for node in function.node_def}
    return ops_


def _trace(fn, form=None, dtype=tf.float32):
    context = ops.serving_lowering(form) if form else contextlib.nullcontext()
    with context:
        return tf.function(fn, autograph=False).get_concrete_function(
            tf.TensorSpec([None], dtype))


def test_serving_forms_trace_plain_kernels_without_custom_gradient_or_xla():
    unlowered = _graph_ops(_trace(ops.selu))
    assert "IdentityN" in unlowered  # tf.custom_gradient's marker: the check below can fail
    assert {"StatefulPartitionedCall", "PartitionedCall"} & unlowered
    for form in ops.SERVING_FORMS:
        lowered = _graph_ops(_trace(ops.selu, form))
        assert not {"IdentityN", "StatefulPartitionedCall", "PartitionedCall"} & lowered, form
        assert "Selu" in lowered  # both forms use TensorFlow's kernel (the exact one off 0)
    assert _graph_ops(_trace(ops.selu, "fused")) - {"Placeholder", "Identity"} == {"Selu"}


def test_exact_serving_form_is_the_exact_forward_on_a_dense_scan():
    x = dense_scan()
    y = _trace(ops.selu, "exact")(tf.constant(x)).numpy()
    np.testing.assert_array_equal(y, tf.function(ops.selu)(tf.constant(x)).numpy())
    assert_relative_close(y, selu_reference(x.astype(np.float64)), 3e-7, F32_TINY)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_fused_serving_form_is_tensorflows_selu_kernel(dtype):
    x = tf.constant(float32_inputs(), dtype)
    y = _trace(ops.selu, "fused", dtype)(x)
    assert y.dtype == dtype
    expected = tf.cast(tf.nn.selu(tf.cast(x, "float64" if dtype == "float64" else "float32")),
                       dtype)
    np.testing.assert_array_equal(y.numpy(), expected.numpy())
    if dtype != "float64":  # not exact near 0, as documented
        assert y.numpy()[list(SPECIAL_INPUTS).index(-1e-8)] == 0


def test_selu_dense_follows_the_serving_form():
    rng = np.random.default_rng(5)
    x, kernel, bias = (tf.constant(rng.normal(size=s), tf.float32)
                       for s in ((64, 9), (9, 7), (7,)))
    z = tf.nn.bias_add(tf.matmul(x, kernel), bias)
    for form, expected in (("exact", ops.selu(z)), ("fused", tf.nn.selu(z))):
        with ops.serving_lowering(form):
            traced = tf.function(ops.selu_dense, autograph=False).get_concrete_function(
                *(tf.TensorSpec(t.shape, t.dtype) for t in (x, kernel, bias)))
        assert "IdentityN" not in _graph_ops(traced)
        np.testing.assert_allclose(traced(x, kernel, bias).numpy(), expected.numpy(),
                                   rtol=1e-6, atol=1e-7)


def test_lowering_contexts_nest_and_restore():
    assert ops.DEFAULT_SERVING_FORM in ops.SERVING_FORMS
    with ops.serving_lowering("fused"):
        with ops.tflite_lowering():
            assert "Elu" in _graph_ops(_trace(ops.selu))
            with ops.serving_lowering("exact"):
                assert "Elu" not in _graph_ops(_trace(ops.selu))
            assert "Elu" in _graph_ops(_trace(ops.selu))
        assert _graph_ops(_trace(ops.selu)) - {"Placeholder", "Identity"} == {"Selu"}
    assert "IdentityN" in _graph_ops(_trace(ops.selu))  # exact, with its custom gradient
    with ops.serving_lowering():
        assert ops.DEFAULT_SERVING_FORM == "fused"
        assert _graph_ops(_trace(ops.selu)) - {"Placeholder", "Identity"} == {"Selu"}


@pytest.mark.parametrize("form", ["Exact", "tflite", None, "expm1"])
def test_serving_lowering_rejects_unknown_forms(form):
    with pytest.raises(ValueError, match="form must be one of"):
        ops.serving_lowering(form)


# --- noise shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("noise_shape, expected", [
    (None, None), ((None, 1, 5), (None, 1, 5)), ([2, None], (2, None)),
    (np.array([3, 1]), (3, 1)), ((np.int64(4),), (4,)), ((), ())])
def test_validate_noise_shape_accepts_positive_ints_and_none(noise_shape, expected):
    assert ops.validate_noise_shape(noise_shape) == expected


@pytest.mark.parametrize("noise_shape", [
    (20, 1.5, 10), (20, -1, 10), (20, 0, 10), "Invalid", (True, 1), 5, (2.0, 1), ("2", 1)])
def test_validate_noise_shape_rejects_everything_else(noise_shape):
    with pytest.raises(ValueError, match="noise_shape must be None or a sequence of positive"):
        ops.validate_noise_shape(noise_shape)


def test_alpha_dropout_rejects_noise_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="does not broadcast"):
        ops.alpha_dropout(tf.ones([4, 6, 5]), 0.5, seed=1, noise_shape=(4, 3, 5))
    with pytest.raises(ValueError, match="positive ints"):
        ops.alpha_dropout(tf.ones([4, 6, 5]), 0.5, seed=1, noise_shape=(4, 1.5, 5))
