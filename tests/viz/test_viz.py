"""Filter grids, image grids and training curves: array layout, value ranges, files written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convnet.viz import image_grid, plot_curves, plot_filters, visualize_grid


def test_rgb_filters_layout_and_per_filter_normalisation(rng):
    w = rng.standard_normal((5, 3, 4, 6))
    w[1] *= 100.0  # a much larger filter still spans the same range after normalisation
    g = visualize_grid(w, ubound=255.0, padding=1)
    # 5 filters -> 3 columns x 2 rows of 4x6 tiles with 1-pixel gaps
    assert g.shape == (2 * 5 - 1, 3 * 7 - 1, 3)
    assert g.min() >= 0 and g.max() <= 255
    for f in range(5):
        r, c = divmod(f, 3)
        tile = g[r * 5 : r * 5 + 4, c * 7 : c * 7 + 6]
        assert tile.min() == pytest.approx(0) and tile.max() == pytest.approx(255)
        # channel c of the filter is colour plane c; weight (i, j) is pixel (i, j)
        expect = (w[f] - w[f].min()) / (w[f].max() - w[f].min()) * 255
        np.testing.assert_allclose(tile, expect.transpose(1, 2, 0))
    # padding rows/columns and the empty sixth cell stay at pad_value
    assert np.all(g[4] == 0) and np.all(g[:, 6] == 0) and np.all(g[5:, 14:] == 0)


def test_global_normalisation_keeps_relative_size(rng):
    w = rng.standard_normal((2, 1, 3, 3))
    w[1] *= 0.01
    g = visualize_grid(w, ubound=1.0, normalize="global", padding=0)
    assert g.shape == (3, 6)
    assert np.ptp(g[:, :3]) > 10 * np.ptp(g[:, 3:])
    assert g.min() == pytest.approx(0) and g.max() == pytest.approx(1)


def test_grey_and_many_channel_layouts(rng):
    g1 = visualize_grid(rng.standard_normal((10, 1, 5, 5)), padding=2)
    assert g1.shape == (3 * 7 - 2, 4 * 7 - 2)  # ceil(sqrt(10)) = 4 columns, 3 rows
    w = rng.standard_normal((4, 6, 3, 3))
    g = visualize_grid(w, padding=1)
    assert g.shape == (4 * 4 - 1, 6 * 4 - 1)  # rows = filters, columns = channels
    # row f, column c is channel c of filter f, normalised with filter f's min/max
    f, c = 2, 5
    tile = g[f * 4 : f * 4 + 3, c * 4 : c * 4 + 3]
    expect = (w[f, c] - w[f].min()) / (w[f].max() - w[f].min()) * 255
    np.testing.assert_allclose(tile, expect)
    const = visualize_grid(np.ones((1, 1, 2, 2)))
    np.testing.assert_allclose(const, 127.5)  # no direction to show: mid-grey


def test_visualize_grid_bad_input():
    with pytest.raises(
        ValueError, match=r"visualize_grid: w must be conv weights \(F, C, HH, WW\)"
    ):
        visualize_grid(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        visualize_grid(np.full((1, 1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="normalize"):
        visualize_grid(np.zeros((1, 1, 2, 2)), normalize="none")


def test_image_grid(rng):
    x = rng.random((7, 3, 4, 5))
    g = image_grid(x, nrow=4, padding=2, pad_value=-1)
    assert g.shape == (2 * 6 - 2, 4 * 7 - 2, 3)
    np.testing.assert_array_equal(g[6:10, 7:12], x[5].transpose(1, 2, 0))  # row 1, col 1
    assert np.all(g[4:6] == -1)
    grey = image_grid(rng.random((4, 1, 2, 2)), padding=0)
    assert grey.shape == (4, 4)
    with pytest.raises(ValueError, match="image_grid"):
        image_grid(rng.random((2, 2, 4, 4)))


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_filters_writes_png(tmp_path, rng):
    from PIL import Image

    out = plot_filters(rng.standard_normal((8, 3, 5, 5)), tmp_path / "f" / "filters.png")
    assert out.exists() and _is_png(out)
    assert min(Image.open(out).size) > 50
    assert [p.name for p in out.parent.iterdir()] == ["filters.png"]  # no temp file


def test_plot_curves_dict_and_object(tmp_path):
    hist = {
        "loss_history": list(np.linspace(2.3, 0.1, 200)),
        "train_acc_history": [0.5, 0.8, 0.9],
        "val_acc_history": [0.45, 0.7, 0.85],
    }
    p = plot_curves(hist, tmp_path / "curves.png", title="run")
    assert _is_png(p)

    class FakeSolver:
        loss_history = [1.0, 0.5]
        train_acc_history: list = []
        val_acc_history = [0.3]

    assert _is_png(plot_curves(FakeSolver(), tmp_path / "c2.png"))
    with pytest.raises(ValueError, match="plot_curves"):
        plot_curves({}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_import_is_light():
    # matplotlib is imported only when a figure is drawn; TensorFlow never
    code = (
        "import sys, convnet.viz; print('matplotlib' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
