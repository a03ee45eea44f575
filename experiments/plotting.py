"""matplotlib, optional: figures are skipped (with a log line) when it is not installed."""

from absl import logging


def pyplot():
    """Returns ``matplotlib.pyplot`` with the non-interactive Agg backend, or None.

    Returns:
      The pyplot module, or None (after a warning) if matplotlib is not installed
      (``pip install -e '.[experiments]'``).
    """
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
    except ImportError:
        logging.warning("matplotlib is not installed (pip install -e '.[experiments]'); "
                        "skipping figures")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    return plt


def save(fig, path):
    """Saves a figure as a compact PNG and closes it.

    Args:
      fig: a matplotlib figure.
      path: destination ``.png`` file.
    """
    fig.savefig(path, dpi=90, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    plt.close(fig)
    logging.info("wrote %s", path)
