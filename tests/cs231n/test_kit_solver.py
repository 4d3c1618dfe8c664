"""The kit-compatible ``Solver``: keywords and defaults, minibatches drawn with replacement
from ``np.random``, the accuracy history as the kit records it, learning-rate decay, best
parameters, and checkpoints as atomic .npz files."""

# The kit's exercises seed and draw from NumPy's global random state; so do these tests.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

from convnet.cs231n import optim
from convnet.cs231n.classifiers.fc_net import TwoLayerNet
from convnet.cs231n.solver import Solver, load_checkpoint


class RecordingModel:
    """Linear softmax classifier that remembers every training batch it is given."""

    def __init__(self, D: int, C: int) -> None:
        rng = np.random.default_rng(0)
        self.params = {"W": 0.01 * rng.standard_normal((D, C)), "b": np.zeros(C)}
        self.batches: list[np.ndarray] = []

    def loss(self, X, y=None):
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        self.batches.append(X[:, 0].copy())
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        N = len(y)
        loss = -np.log(p[np.arange(N), y]).mean()
        d = p.copy()
        d[np.arange(N), y] -= 1
        d /= N
        return loss, {"W": X.T @ d, "b": d.sum(axis=0)}


def _data(N=40, D=4, C=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    X[:, 0] = np.arange(N)  # column 0 identifies the sample
    y = rng.integers(C, size=N)
    return {"X_train": X, "y_train": y, "X_val": X[:10].copy(), "y_val": y[:10].copy()}


def test_defaults_are_the_kits():
    s = Solver(RecordingModel(4, 3), _data())
    assert s.update_rule is optim.sgd
    assert (s.lr_decay, s.batch_size, s.num_epochs) == (1.0, 100, 10)
    assert (s.num_train_samples, s.num_val_samples) == (1000, None)
    assert (s.checkpoint_name, s.print_every, s.verbose) == (None, 10, True)


def test_unknown_keyword_and_rule_raise():
    with pytest.raises(ValueError, match="unrecognized arguments checkpoint_path"):
        Solver(RecordingModel(4, 3), _data(), checkpoint_path="x")
    with pytest.raises(ValueError, match='invalid update_rule "lbfgs"'):
        Solver(RecordingModel(4, 3), _data(), update_rule="lbfgs")
    with pytest.raises(ValueError, match="missing"):
        Solver(RecordingModel(4, 3), {"X_train": np.ones((2, 4))})


def test_minibatches_are_drawn_with_replacement_from_numpy_global_state():
    data = _data(N=40)
    model = RecordingModel(4, 3)
    np.random.seed(7)
    Solver(model, data, batch_size=8, num_epochs=2, verbose=False).train()
    np.random.seed(7)
    first = np.random.choice(40, 8)
    assert np.array_equal(model.batches[0], first)
    drawn = np.concatenate(model.batches)
    assert len(model.batches) == 2 * (40 // 8)
    # with replacement: 80 draws from 40 samples repeat some and miss some
    assert len(np.unique(drawn)) < 40


def test_histories_as_the_kit_records_them(capsys):
    data = _data(N=40)
    np.random.seed(0)
    s = Solver(RecordingModel(4, 3), data, batch_size=10, num_epochs=3, print_every=5,
               num_train_samples=20, optim_config={"learning_rate": 0.1})
    s.train()
    iterations = 3 * (40 // 10)
    assert len(s.loss_history) == iterations
    # after the first iteration, then after every epoch (the last one is the last iteration)
    assert len(s.train_acc_history) == len(s.val_acc_history) == 3 + 1
    out = capsys.readouterr().out
    assert "(Iteration 1 / 12) loss:" in out and "(Iteration 6 / 12) loss:" in out
    assert "(Epoch 0 / 3) train acc:" in out and "(Epoch 3 / 3) train acc:" in out


def test_lr_decay_each_epoch_and_best_params_restored():
    data = _data(N=30)
    model = RecordingModel(4, 3)
    np.random.seed(1)
    s = Solver(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.2},
               lr_decay=0.5, batch_size=10, num_epochs=3, verbose=False)
    s.train()
    for config in s.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.2 * 0.5**3)
        assert "velocity" in config
    assert max(s.val_acc_history) == s.best_val_acc
    for k, v in s.best_params.items():
        assert np.array_equal(model.params[k], v)


def test_check_accuracy_subsamples_and_batches():
    data = _data(N=40)
    model = RecordingModel(4, 3)
    s = Solver(model, data, verbose=False)
    full = s.check_accuracy(data["X_train"], data["y_train"], batch_size=7)
    expected = np.mean(np.argmax(model.loss(data["X_train"]), axis=1) == data["y_train"])
    assert full == pytest.approx(expected)
    np.random.seed(3)
    sub = s.check_accuracy(data["X_train"], data["y_train"], num_samples=10)
    np.random.seed(3)
    mask = np.random.choice(40, 10)
    pred = np.argmax(model.loss(data["X_train"][mask]), axis=1)
    assert sub == pytest.approx(np.mean(pred == data["y_train"][mask]))


def test_checkpoints_are_npz_with_json_state(tmp_path):
    data = _data(N=20)
    model = RecordingModel(4, 3)
    np.random.seed(0)
    name = tmp_path / "run" / "ck"
    s = Solver(model, data, batch_size=10, num_epochs=2, checkpoint_name=str(name),
               update_rule="adam", verbose=False)
    s.train()
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["ck_epoch_0.npz", "ck_epoch_1.npz", "ck_epoch_2.npz"]
    state = load_checkpoint(tmp_path / "run" / "ck_epoch_2.npz")
    assert state["epoch"] == 2 and state["update_rule"] == "adam"
    assert state["loss_history"] == s.loss_history
    assert state["val_acc_history"] == s.val_acc_history
    assert set(state["params"]) == {"W", "b"}
    with np.load(tmp_path / "run" / "ck_epoch_1.npz", allow_pickle=False) as z:
        assert "params/W" in z.files


def test_two_layer_net_trains_on_separable_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0).astype(int)
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    np.random.seed(0)
    model = TwoLayerNet(input_dim=5, hidden_dim=30, num_classes=4, weight_scale=0.1)
    s = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
               batch_size=20, num_epochs=30, verbose=False)
    s.train()
    assert s.loss_history[-1] < s.loss_history[0]
    assert s.best_val_acc > 0.9
