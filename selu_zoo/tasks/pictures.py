"""Drawing example images as labeled rows (for PNG files and TensorBoard)."""

import numpy as np

# Pixels per image cell, and the gap between cells.
CELL_PIXELS = 64
GAP_PIXELS = 6
LABEL_PIXELS = 150


def image_rows(rows):
    """Draws rows of images side by side, each row labeled on its left.

    Args:
      rows: an ordered dict ``label -> images`` with images of shape ``(n, h, w)`` or
        ``(n, h, w, c)`` (c = 1 or 3) and values in [0, 1] (clipped).

    Returns:
      A ``(height, width, 3)`` uint8 array: a white sheet with one row per entry, the
      label left of it, every image enlarged to about `CELL_PIXELS` with `GAP_PIXELS`
      between cells.
    """
    import matplotlib  # noqa: PLC0415  (imported on first use: it takes a second)
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

    columns = max(len(images) for images in rows.values())
    dpi = 100
    width = LABEL_PIXELS + columns * (CELL_PIXELS + GAP_PIXELS) + GAP_PIXELS
    height = len(rows) * (CELL_PIXELS + GAP_PIXELS) + GAP_PIXELS
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    for r, (label, images) in enumerate(rows.items()):
        top = 1 - (GAP_PIXELS + r * (CELL_PIXELS + GAP_PIXELS)) / height
        figure.text(8 / width, top - CELL_PIXELS / 2 / height, label, ha="left",
                    va="center", fontsize=11)
        for c, image in enumerate(np.clip(np.asarray(images, np.float32), 0, 1)):
            left = (LABEL_PIXELS + GAP_PIXELS + c * (CELL_PIXELS + GAP_PIXELS)) / width
            axes = figure.add_axes((left, top - CELL_PIXELS / height, CELL_PIXELS / width,
                                    CELL_PIXELS / height))
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1,
                        interpolation="nearest")
            axes.set_axis_off()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
