"""Figures of the experiments: matplotlib with the non-interactive Agg backend."""

from absl import logging


def pyplot():
    """Returns ``matplotlib.pyplot`` with the non-interactive Agg backend.

    Returns:
      The pyplot module (matplotlib is a dependency of selu_zoo).
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

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
