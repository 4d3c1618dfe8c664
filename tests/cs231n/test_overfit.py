"""Overfitting 50 CIFAR-10 training images to 100% training accuracy with the kit's
``Solver`` and classifiers, with the optimiser settings of the kit's exercises.

The data are ``get_CIFAR10_data`` with 1000 training images (the mean image is therefore
that of those 1000, not of 49000); the runs use the first 50.
"""

# The kit's exercises seed and draw from NumPy's global random state; so do these tests.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data

from convnet._threads import single_threaded_blas
from convnet.cs231n.classifiers.cnn import ThreeLayerConvNet
from convnet.cs231n.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from convnet.cs231n.data_utils import get_CIFAR10_data
from convnet.cs231n.solver import Solver


@pytest.fixture(scope="module")
def small_data():
    need_data("cifar-10-batches-py/data_batch_5")
    data = get_CIFAR10_data(num_training=1000, num_validation=100, num_test=10)
    return {"X_train": data["X_train"][:50], "y_train": data["y_train"][:50],
            "X_val": data["X_val"], "y_val": data["y_val"]}


@pytest.fixture(autouse=True)
def one_blas_thread():
    # small GEMMs on a shared machine: BLAS threads only contend
    with single_threaded_blas():
        yield


def _overfit(model, data, **kwargs):
    solver = Solver(model, data, verbose=False, **kwargs)
    solver.train()
    return solver


def test_two_layer_net_overfits(small_data):
    np.random.seed(231)
    model = TwoLayerNet(hidden_dim=100, weight_scale=1e-2)
    s = _overfit(model, small_data, update_rule="sgd", optim_config={"learning_rate": 1e-3},
                 num_epochs=20, batch_size=25, print_every=10)
    assert s.train_acc_history[-1] == 1.0
    assert len(s.train_acc_history) == 21 and len(s.loss_history) == 40


def test_three_layer_fully_connected_net_overfits(small_data):
    np.random.seed(231)
    model = FullyConnectedNet([100, 100], weight_scale=1e-2, dtype=np.float64)
    s = _overfit(model, small_data, update_rule="sgd", optim_config={"learning_rate": 1e-2},
                 num_epochs=20, batch_size=25, print_every=10)
    assert s.train_acc_history[-1] == 1.0


def test_five_layer_fully_connected_net_overfits(small_data):
    np.random.seed(231)
    model = FullyConnectedNet([100, 100, 100, 100], weight_scale=1e-1, dtype=np.float64)
    s = _overfit(model, small_data, update_rule="sgd", optim_config={"learning_rate": 2e-3},
                 num_epochs=20, batch_size=25, print_every=10)
    assert s.train_acc_history[-1] == 1.0


def test_three_layer_convnet_overfits(small_data):
    np.random.seed(231)
    model = ThreeLayerConvNet(weight_scale=1e-2)
    s = _overfit(model, small_data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                 num_epochs=15, batch_size=50, print_every=1)
    assert s.train_acc_history[-1] == 1.0
    assert s.val_acc_history[-1] < 0.5  # memorised, not learned
