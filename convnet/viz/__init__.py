"""Figures: conv-filter grids, image grids, training curves (and latent spaces in ``latent``).

Nothing here needs a display: figures are drawn on matplotlib's Agg canvas and written as
PNG files atomically. Importing this package does not import matplotlib.
"""

from convnet.viz.curves import history_of, plot_curves, plot_losses
from convnet.viz.grid import image_grid, plot_filters, save_figure, visualize_grid

__all__ = [
    "history_of",
    "image_grid",
    "plot_curves",
    "plot_filters",
    "plot_losses",
    "save_figure",
    "visualize_grid",
]
