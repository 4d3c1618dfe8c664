"""Sequential.loss runs a ReLU followed by max pooling as one layer: same numbers, and the
layers keep working one by one everywhere else."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.inputgrad.relu_redirect import guided_relu_backward, relu_backward_rule
from convnet.models import BasicConvNet, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from convnet.solver import Solver


def _net(dtype=np.float64, seed=0) -> Sequential:
    # Two pairs, one with overlapping windows, padding and ceil_mode; a ReLU before a Dense
    # that stays on its own.
    return Sequential(
        [Conv2D(2, 4, 3, pad=1, seed=seed, dtype=dtype), ReLU(),
         MaxPool2D(3, 2, pad=1, ceil_mode=True, dtype=dtype),
         Conv2D(4, 5, 3, seed=seed + 1, dtype=dtype), ReLU(), MaxPool2D(2, dtype=dtype),
         Flatten(), Dense(5, 6, seed=seed + 2, dtype=dtype), ReLU(),
         Dense(6, 3, seed=seed + 3, dtype=dtype)],
        input_shape=(2, 9, 9), loss="softmax", reg=0.1,
    )


def _loss(model, X, y, fuse):
    model.fuse_relu_pool = fuse
    loss, grads = model.loss(X, y)
    return loss, {k: v.copy() for k, v in grads.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_loss_and_gradients_are_bit_identical(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2, 9, 9)).astype(dtype)
    X[0] = np.round(X[0])  # tied maxima and zeros in some windows
    y = rng.integers(0, 3, 6)
    model = _net(dtype)
    fused = _loss(model, X, y, True)
    assert model._fused == {1, 4}  # the ReLU before the Dense is not fused
    plain = _loss(model, X, y, False)
    assert model._fused == set()
    assert fused[0] == plain[0]
    for k in plain[1]:
        np.testing.assert_array_equal(fused[1][k], plain[1][k], err_msg=k)


def test_forward_and_backward_from_a_layer_still_work_after_a_fused_step():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 2, 9, 9))
    model = _net()
    model.loss(X, rng.integers(0, 3, 3))
    with pytest.raises(RuntimeError, match="inside the"):
        model.backward_layers({"relu1": np.ones((3, 4, 9, 9))})
    acts = model.forward_layers(X, ["relu1", "pool1"])  # unfused: every output exists
    np.testing.assert_array_equal(acts["relu1"], np.maximum(acts["relu1"], 0))
    dx = model.backward(np.ones((3, 4, 5, 5)), from_="pool1")
    assert dx.shape == X.shape


def test_a_relu_with_its_own_backward_rule_is_not_fused():
    model = _net()
    X = np.random.default_rng(2).standard_normal((2, 2, 9, 9))
    with relu_backward_rule(model, guided_relu_backward):
        model.loss(X, np.array([0, 1]))
        assert model._fused == set()
    model.loss(X, np.array([0, 1]))
    assert model._fused == {1, 4}


def test_training_with_and_without_fusion_is_identical():
    rng = np.random.default_rng(3)
    data = {"X_train": rng.standard_normal((40, 1, 12, 12)).astype(np.float32),
            "y_train": rng.integers(0, 10, 40),
            "X_val": rng.standard_normal((10, 1, 12, 12)).astype(np.float32),
            "y_val": rng.integers(0, 10, 10)}
    results = []
    for fuse in (True, False):
        model = BasicConvNet((1, 12, 12), num_filters=4, filter_size=3, hidden_dim=8, seed=0)
        model.fuse_relu_pool = fuse
        solver = Solver(model, data, update_rule="adam", batch_size=10, num_epochs=2,
                        verbose=False)
        solver.train()
        results.append((solver.loss_history, {k: v.copy() for k, v in model.params.items()}))
    assert results[0][0] == results[1][0]
    for k in results[1][1]:
        np.testing.assert_array_equal(results[0][1][k], results[1][1][k], err_msg=k)
