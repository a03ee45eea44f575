"""Shared pytest fixtures: execution modes, dtype helpers, and a system temp folder of the
suite's own."""

import fnmatch
import os
import tempfile

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


# What TensorFlow, TFDS and selu_zoo's benchmarks leave in a temp folder unless pointed
# elsewhere: autograph's generated sources (kept by processes that exit without atexit), TFDS's
# preparation folders, the benchmarks' data.
LEFTOVER_PATTERNS = ("__autograph_generated_file*", "tmp*tfds", "selu_zoo_*")


def _leftovers(folder):
    return {name for name in os.listdir(folder)
            if any(fnmatch.fnmatch(name, pattern) for pattern in LEFTOVER_PATTERNS)}


@pytest.fixture(scope="session", autouse=True)
def suite_temp_folder(tmp_path_factory):
    """Points the temp folder of the suite and of every process it starts (``TMPDIR``) into
    pytest's own base folder; afterwards, fails if the system temp folder gained anything
    the suite's code is known to leave there (so a hard-coded ``/tmp`` path is caught)."""
    system = tempfile.gettempdir()
    before = _leftovers(system)
    folder = str(tmp_path_factory.mktemp("system_tmp"))
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"], tempfile.tempdir = folder, folder
    yield folder
    tempfile.tempdir = None
    if saved is None:
        os.environ.pop("TMPDIR")
    else:
        os.environ["TMPDIR"] = saved
    left = sorted(_leftovers(system) - before)
    assert not left, f"the suite left {left} in {system}; write under tmp_path instead"
