"""``data_utils`` (CIFAR-10 split, mean subtraction, NHWC loaders) and ``vis_utils``."""

# The kit's exercises seed and draw from NumPy's global random state; so do these tests.
# ruff: noqa: NPY002

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import need_data

from convnet.cs231n.data_utils import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch
from convnet.cs231n.vis_utils import visualize_grid
from convnet.data import load_cifar10


def test_get_cifar10_data_defaults_are_the_kits():
    params = inspect.signature(get_CIFAR10_data).parameters
    assert [(k, params[k].default) for k in list(params)[:4]] == [
        ("num_training", 49000), ("num_validation", 1000), ("num_test", 1000),
        ("subtract_mean", True)]


@pytest.fixture(scope="module")
def raw_cifar():
    need_data("cifar-10-batches-py/data_batch_5")
    return load_cifar10(validation=0, dtype="uint8")


def test_get_cifar10_data_split_and_mean(raw_cifar):
    d = get_CIFAR10_data(num_training=1000, num_validation=200, num_test=50)
    assert set(d) == {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}
    assert d["X_train"].shape == (1000, 3, 32, 32) and d["X_train"].dtype == np.float64
    assert d["X_val"].shape == (200, 3, 32, 32) and d["X_test"].shape == (50, 3, 32, 32)
    raw_train = raw_cifar["X_train"][:1000].astype(np.float64)
    mean = raw_train.mean(axis=0)
    assert np.allclose(d["X_train"], raw_train - mean)
    assert np.allclose(d["X_val"], raw_cifar["X_train"][1000:1200] - mean)
    assert np.allclose(d["X_test"], raw_cifar["X_test"][:50] - mean)
    assert np.array_equal(d["y_val"], raw_cifar["y_train"][1000:1200])
    assert abs(d["X_train"].mean()) < 1e-6


def test_get_cifar10_data_without_mean_is_pixels(raw_cifar):
    d = get_CIFAR10_data(num_training=100, num_validation=10, num_test=10,
                         subtract_mean=False, dtype=np.float32)
    assert d["X_train"].dtype == np.float32
    assert d["X_train"].min() >= 0 and d["X_train"].max() <= 255 and d["X_train"].max() > 200
    assert np.array_equal(d["X_val"], raw_cifar["X_train"][100:110])
    with pytest.raises(ValueError, match="exceeds the 50000 training images"):
        get_CIFAR10_data(num_training=49500, num_validation=1000)


def test_load_cifar_batch_is_nhwc(raw_cifar):
    root = need_data("cifar-10-batches-py")
    X1, Y1 = load_CIFAR_batch(root / "data_batch_2")
    assert X1.shape == (10000, 32, 32, 3) and X1.dtype == np.float64
    assert np.array_equal(X1.transpose(0, 3, 1, 2), raw_cifar["X_train"][10000:20000])
    assert np.array_equal(Y1, raw_cifar["y_train"][10000:20000])


@pytest.mark.slow  # converts all 60000 images to float64 (1.4 GB)
def test_load_cifar10_is_nhwc(raw_cifar):
    root = need_data("cifar-10-batches-py")
    Xtr, Ytr, Xte, Yte = load_CIFAR10(root)
    assert Xtr.shape == (50000, 32, 32, 3) and Xte.shape == (10000, 32, 32, 3)
    assert Xtr.dtype == np.float64 and Ytr.shape == (50000,) and Yte.shape == (10000,)
    assert np.array_equal(Xtr.transpose(0, 3, 1, 2), raw_cifar["X_train"])
    assert np.array_equal(Xte.transpose(0, 3, 1, 2), raw_cifar["X_test"])
    assert np.array_equal(Ytr, raw_cifar["y_train"]) and np.array_equal(Yte, raw_cifar["y_test"])


def test_visualize_grid_layout_and_scaling():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 3, 4, 4))  # conv weights (F, C, HH, WW)
    grid = visualize_grid(W.transpose(0, 2, 3, 1))
    # ceil(sqrt(5)) = 3 tiles per side, 1 pixel of padding
    assert grid.shape == (3 * 4 + 2, 3 * 4 + 2, 3)
    first = grid[:4, :4]
    img = W[0].transpose(1, 2, 0)
    expected = 255.0 * (img - img.min()) / (img.max() - img.min())
    assert np.allclose(first, expected)
    assert np.all(grid[4, :] == 0) and np.all(grid[-4:, 5:] == 0)  # padding, empty cells
    assert visualize_grid(rng.standard_normal((4, 6, 6, 1)), ubound=1.0).shape == (13, 13, 1)


def test_visualize_grid_refuses_the_wrong_layout():
    W = np.random.default_rng(0).standard_normal((32, 3, 7, 7))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\).*transpose\(0, 2, 3, 1\)"):
        visualize_grid(W)
    with pytest.raises(ValueError, match="4-D|N, H, W, C"):
        visualize_grid(np.ones((3, 7, 7)))
