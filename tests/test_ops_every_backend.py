"""`selu_zoo.ops` on whichever Keras backend runs the suite, against float64 NumPy.

Backend-neutral: tests/test_backends.py runs this module under JAX and PyTorch as well, so
each backend's SELU and gradient are checked on the same dense scan, eagerly and compiled
(``tf.function(jit_compile=True)`` on TensorFlow, ``jax.jit`` on JAX; PyTorch eagerly).
"""

import keras
import numpy as np
import pytest

from selu_zoo import ALPHA, SCALE, ops

BACKEND = keras.backend.backend()
TOLERANCE = 3e-7  # relative, float32


def _scan():
    """2M float32 points over [-88, 88], plus every decade of tiny negatives and positives."""
    dense = np.linspace(-88.0, 88.0, 2_000_000, dtype=np.float32)
    tiny = np.concatenate([-np.logspace(-30, 0, 3000), np.logspace(-30, 0, 3000)])
    return np.concatenate([dense, tiny.astype(np.float32), [0.0, -0.5, -0.7, -1e-8]]).astype(
        np.float32)


def _reference(x):
    x = x.astype(np.float64)
    value = np.where(x > 0, SCALE * x, SCALE * ALPHA * np.expm1(np.minimum(x, 0)))
    slope = np.where(x > 0, SCALE, SCALE * ALPHA * np.exp(np.minimum(x, 0)))
    return value, slope


def _compile(fn):
    if BACKEND == "jax":
        import jax  # noqa: PLC0415

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return tf.function(fn, jit_compile=True, autograph=False)
    return fn  # torch: eager (torch.compile needs a C++ toolchain)


def _value_and_gradient(x):
    """``selu(x)`` and ``d sum(selu(x)) / dx`` as NumPy arrays, through the backend's autodiff."""
    if BACKEND == "jax":
        import jax  # noqa: PLC0415

        value, vjp = jax.vjp(ops.selu, x)
        return value, vjp(jax.numpy.ones_like(value))[0]
    if BACKEND == "torch":
        import torch  # noqa: PLC0415

        x = x.detach().clone().requires_grad_(True)
        value = ops.selu(x)
        value.backward(torch.ones_like(value))
        return value.detach(), x.grad
    import tensorflow as tf  # noqa: PLC0415

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = ops.selu(x)
    return value, tape.gradient(value, x)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_selu_and_its_gradient_within_3e7_on_a_dense_scan(compiled):
    x = _scan()
    fn = _compile(_value_and_gradient) if compiled else _value_and_gradient
    value, gradient = (keras.ops.convert_to_numpy(t).astype(np.float64)
                       for t in fn(keras.ops.convert_to_tensor(x)))
    expected_value, expected_slope = _reference(x)
    tiny = np.finfo(np.float32).tiny
    normal_input = np.abs(x) >= tiny  # subnormal inputs may be read as 0
    for got, want in ((value, expected_value), (gradient, expected_slope)):
        # Results within a rounding of the smallest normal float may come out flushed.
        checked = normal_input & (np.abs(want) >= 2 * tiny)
        error = np.abs(got - want) / np.abs(np.where(checked, want, 1.0))
        assert error[checked].max() <= TOLERANCE, x[checked][np.argmax(error[checked])]


def test_derivative_at_zero_is_scale_times_alpha():
    _, gradient = _value_and_gradient(keras.ops.convert_to_tensor(np.zeros(3, np.float32)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gradient), SCALE * ALPHA, rtol=1e-7)


# One unit in the last place of each dtype (relative), the bound for a single rounding.
ULP = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": TOLERANCE, "float64": 1e-15}


@pytest.mark.parametrize("dtype", list(ULP))
def test_outputs_keep_the_input_dtype_and_half_types_are_computed_in_float32(dtype):
    if dtype == "float64" and BACKEND == "jax":
        import jax  # noqa: PLC0415

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX without jax_enable_x64 has no float64")
    x = keras.ops.cast(keras.ops.convert_to_tensor(np.linspace(-5, 5, 1001)), dtype)
    y = ops.selu(x)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    reference, _ = _reference(keras.ops.convert_to_numpy(keras.ops.cast(x, "float64")))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(y, "float64")),
                               reference, rtol=ULP[dtype], atol=1e-300)


def test_selu_dense_is_selu_of_the_affine_map():
    rng = np.random.default_rng(0)
    x, kernel, bias = (rng.normal(size=s).astype(np.float32) for s in ((5, 4), (4, 3), (3,)))
    expected, _ = _reference((x.astype(np.float64) @ kernel + bias).astype(np.float32))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ops.selu_dense(x, kernel, bias)),
                               expected, rtol=2e-6, atol=1e-6)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        ops.selu(keras.ops.convert_to_tensor(np.arange(3)))
