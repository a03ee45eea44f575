"""What train.py prints: a header, a line per epoch, a summary; TensorFlow's chatter aside.

TensorFlow's C++ code writes to file descriptor 2 while ``import tensorflow`` runs (before
absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not stop it), and so does the
TFLite converter. `NativeStderr` points descriptor 2 at a temporary file for the whole run
and gives Python a stream on the real stderr, so our lines reach the console and C++'s do
not; the captured text is shown when the run fails unexpectedly, and ``--verbosity=1``
shows everything as it happens. This module imports no TensorFlow: train.py starts the
capture before importing it.

`configure_logging` keeps INFO lines of this project's code and warnings and errors of
everyone's; ``--verbosity=1`` (absl's flag) shows every INFO line too.
"""

import io
import logging as python_logging
import os
import sys
import tempfile

_PROJECT = os.path.dirname(os.path.abspath(__file__))


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
