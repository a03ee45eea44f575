"""Shared pytest fixtures: execution modes and dtype helpers."""

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import selu_zoo  # noqa: F401  (registers layers; fails fast if the backend is wrong)

NUMPY_DTYPES = {
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "float32": np.float32,
    "float64": np.float64,
}


def _eager(fn):
    return fn


def _graph(fn):
    return tf.function(fn, autograph=False)


def _xla(fn):
    return tf.function(fn, autograph=False, jit_compile=True)


EXECUTION_MODES = {"eager": _eager, "graph": _graph, "xla": _xla}


@pytest.fixture(params=list(EXECUTION_MODES))
def run_mode(request):
    """Wraps a function to run eagerly, inside tf.function, or inside a jit_compile function."""
    return EXECUTION_MODES[request.param]
