"""What train.py prints: a header, a line per epoch, a summary; TensorFlow's chatter aside.

`NativeStderr` is `selu_zoo.console.NativeStderr` (TensorFlow's C++ lines go to a file), loaded
here without importing selu_zoo, whose layers import TensorFlow: train.py starts the capture
before that. The captured text is shown when the run fails unexpectedly, and
``--verbosity=1`` shows everything as it happens.

`configure_logging` keeps INFO lines of this project's code and warnings and errors of
everyone's; ``--verbosity=1`` (absl's flag) shows every INFO line too.
"""

import importlib.util
import logging as python_logging
import os
import sys

_PROJECT = os.path.dirname(os.path.abspath(__file__))


def _selu_zoo_console():
    """``selu_zoo.console``, imported without running ``selu_zoo/__init__.py`` if it is not
    imported yet (``import selu_zoo`` later finds this same module)."""
    if "selu_zoo.console" in sys.modules:
        return sys.modules["selu_zoo.console"]
    spec = importlib.util.spec_from_file_location(
        "selu_zoo.console", os.path.join(_PROJECT, "selu_zoo", "console.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["selu_zoo.console"] = module
    spec.loader.exec_module(module)
    return module


NativeStderr = _selu_zoo_console().NativeStderr


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
