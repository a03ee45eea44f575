"""The console of selu_zoo's programs: log lines for people, TensorFlow's C++ lines aside.

TensorFlow's C++ code writes to file descriptor 2 while ``import tensorflow`` runs (before
absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not stop it), and so does the
TFLite converter. `NativeStderr` points descriptor 2 at a temporary file for the whole run
and gives Python a stream on the real stderr, so Python's lines (absl's, warnings) reach the
console and C++'s do not.

The capture must start before TensorFlow is imported. ``train.py`` starts it first thing,
loading this file without importing selu_zoo (whose layers import TensorFlow);
``python -m selu_zoo.export`` imports selu_zoo, and with it TensorFlow, before its
``__main__`` runs, so ``import selu_zoo`` starts it for that command (`start_for_cli`).
This module imports neither TensorFlow nor the rest of selu_zoo.

`configure_logging` keeps INFO lines of this project's code and warnings and errors of
everyone's; ``--verbosity=1`` (absl's flag) shows every INFO line too.
"""

import io
import logging as python_logging
import os
import sys
import tempfile

# The modules whose ``python -m`` run has its capture started by ``import selu_zoo``.
CLI_MODULES = ("selu_zoo.export",)
# Interpreter options that take the next argument as their value.
_OPTIONS_WITH_VALUES = ("-W", "-X", "--check-hash-based-pycs")

_capture = None


class NativeStderr:
    """File descriptor 2 captured into a temporary file, Python's ``sys.stderr`` kept real."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()
        self._real = os.dup(2)
        sys.stderr.flush()
        os.dup2(self._file.fileno(), 2)
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(self._real), "wb", buffering=0),
                                      encoding="utf-8", errors="replace", line_buffering=True)

    def text(self, limit=20_000):
        """The last ``limit`` characters written to descriptor 2 so far."""
        self._file.flush()
        size = self._file.seek(0, os.SEEK_END)
        self._file.seek(max(0, size - limit))
        return self._file.read().decode("utf-8", errors="replace")

    def release(self):
        """Writes what was captured to the real stderr and stops capturing."""
        sys.stderr.write(self.text())
        sys.stderr.flush()
        os.dup2(self._real, 2)


def start():
    """Starts this process's capture, once.

    Returns:
      The process's `NativeStderr`.
    """
    global _capture
    if _capture is None:
        _capture = NativeStderr()
    return _capture


def current():
    """The process's `NativeStderr` if `start` ran, else None."""
    return _capture


def main_module(argv=None):
    """The module that ``python [options] -m MODULE ...`` runs, from `sys.orig_argv`.

    Args:
      argv: the interpreter's command line; None: `sys.orig_argv`.

    Returns:
      The module's name, or None for a script, ``-c`` or an interactive interpreter.
    """
    argv = list(getattr(sys, "orig_argv", ()) if argv is None else argv)
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg == "-m":
            return argv[index + 1] if index + 1 < len(argv) else None
        if arg.startswith("-m"):
            return arg[2:]
        if arg == "-c" or not arg.startswith("-"):
            return None
        index += 2 if arg in _OPTIONS_WITH_VALUES else 1
    return None


def start_for_cli():
    """Starts the capture if this process is ``python -m`` one of `CLI_MODULES`.

    Returns:
      The process's `NativeStderr`, or None.
    """
    return start() if main_module() in CLI_MODULES else current()


_PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _OursOrWarnings(python_logging.Filter):
    """Passes INFO records of this project's files, and WARNING and above of any file."""

    def filter(self, record):
        return record.levelno >= python_logging.WARNING or record.pathname.startswith(_PROJECT)


class _Formatter(python_logging.Formatter):
    def format(self, record):
        message = record.getMessage()
        if record.levelno >= python_logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        return f"{self.formatTime(record, '%H:%M:%S')} {message}"


def configure_logging(absl_logging, verbose):
    """Formats absl's log lines for people and, unless ``verbose``, filters them.

    Args:
      absl_logging: the ``absl.logging`` module (its handler is reconfigured).
      verbose: show every INFO line, of TensorFlow, TFDS and Keras too.
    """
    handler = absl_logging.get_absl_handler()
    handler.setFormatter(_Formatter())
    handler.python_handler.stream = sys.stderr
    if not verbose:
        handler.addFilter(_OursOrWarnings())
