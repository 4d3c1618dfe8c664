"""Solver: minibatch order, determinism, resume bit for bit, NaN guard, decay, best params."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.errors import CheckpointError, ConvnetError, TrainingDivergedError
from convnet.models import Dense, FullyConnectedNet, ReLU, Sequential
from convnet.optim import step_decay
from convnet.solver import Solver


def blobs(n: int = 120, d: int = 6, classes: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Separable Gaussian blobs: a problem a small net learns in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 3
    y = rng.integers(0, classes, 2 * n)
    X = (centers[y] + rng.standard_normal((2 * n, d))).astype(np.float32)
    return {"X_train": X[:n], "y_train": y[:n], "X_val": X[n:], "y_val": y[n:]}


def make_model(seed: int = 0, extras: bool = True) -> Sequential:
    # batch norm (running stats) and dropout (mask counter) exercise the checkpointed buffers
    return FullyConnectedNet([16, 8], input_dim=6, num_classes=3, batchnorm=extras,
                             dropout=0.2 if extras else 0.0, reg=1e-3, seed=seed)


def test_training_learns_and_is_deterministic():
    data = blobs()
    s1 = Solver(make_model(), data, optim_config={"learning_rate": 1e-2}, batch_size=25,
                num_epochs=6, verbose=False).train()
    assert s1.val_acc_history[-1] > 0.9 and s1.best_val_acc > 0.9
    assert np.mean(s1.loss_history[-5:]) < np.mean(s1.loss_history[:5])
    assert len(s1.loss_history) == 6 * 5 and len(s1.train_acc_history) == 6
    s2 = Solver(make_model(), data, optim_config={"learning_rate": 1e-2}, batch_size=25,
                num_epochs=6, verbose=False).train()
    for k, v in s1.model.params.items():
        np.testing.assert_array_equal(v, s2.model.params[k])
    s3 = Solver(make_model(), data, optim_config={"learning_rate": 1e-2}, batch_size=25,
                num_epochs=6, verbose=False, seed=1).train()
    assert not np.array_equal(s3.model.params["fc1/W"], s1.model.params["fc1/W"])


class Recorder:
    """Model wrapper recording which samples each training batch contained."""

    def __init__(self, model):
        self.inner, self.batches = model, []

    @property
    def params(self):
        return self.inner.params

    def loss(self, X, y=None):
        if y is not None:
            self.batches.append(X[:, 0].astype(int).tolist())
        return self.inner.loss(X, y)


def test_epochs_draw_minibatches_without_replacement():
    n = 23
    X = np.zeros((n, 6), np.float32)
    X[:, 0] = np.arange(n)  # each row names its sample
    data = {"X_train": X, "y_train": np.arange(n) % 3}
    rec = Recorder(make_model(extras=False))
    solver = Solver(rec, data, batch_size=5, num_epochs=3, verbose=False, num_train_samples=10)
    solver.train()
    assert [len(b) for b in rec.batches] == [5, 5, 5, 5, 3] * 3
    epochs = [sum(rec.batches[i * 5:(i + 1) * 5], []) for i in range(3)]
    for e, seen in enumerate(epochs):
        assert sorted(seen) == list(range(n))  # every sample exactly once
        assert seen == solver.epoch_order(e).tolist()
    assert epochs[0] != epochs[1]  # reshuffled each epoch


class StopAt:
    def __init__(self, iteration: int):
        self.iteration = iteration

    def on_batch_end(self, solver):
        if solver.iteration == self.iteration:
            raise KeyboardInterrupt("simulated kill")


@pytest.mark.parametrize("every", [None, 3])
def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path, every):
    data = blobs()
    kw = dict(update_rule="adam", optim_config={"learning_rate": 5e-3}, lr_decay=0.9,
              batch_size=30, num_epochs=4, verbose=False, seed=3, checkpoint_every=every)
    ref = Solver(make_model(), data, checkpoint_path=tmp_path / "ref.npz", **kw).train()

    ck = tmp_path / "ck.npz"
    s = Solver(make_model(), data, checkpoint_path=ck, callbacks=[StopAt(10)], **kw)
    with pytest.raises(KeyboardInterrupt):
        s.train()  # dies in the 3rd epoch (4 batches per epoch), after iteration 10
    resumed = Solver.resume(ck, make_model(seed=42), data, verbose=False)
    assert resumed.iteration == (9 if every else 8)
    resumed.train()
    for k, v in ref.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)
    for k, v in ref.model.buffers.items():
        np.testing.assert_array_equal(resumed.model.buffers[k], v, err_msg=k)
    assert resumed.loss_history == ref.loss_history
    assert resumed.val_acc_history == ref.val_acc_history
    assert resumed.lr_history == ref.lr_history


def test_nan_guard_stops_with_message_and_keeps_checkpoint(tmp_path):
    data = blobs()
    ck = tmp_path / "ck.npz"
    solver = Solver(make_model(extras=False), data, update_rule="sgd",
                    optim_config={"learning_rate": 1e30}, batch_size=30, num_epochs=3,
                    verbose=False, checkpoint_path=ck)
    with pytest.raises(TrainingDivergedError) as exc:
        solver.train()
    msg = str(exc.value)
    assert "diverged in epoch 1, iteration" in msg
    assert "non-finite" in msg or "loss is" in msg
    assert str(ck) in msg and "learning_rate=1e+30" in msg
    assert isinstance(exc.value, ConvnetError)
    # the kept checkpoint is the last good state, loadable and finite
    fresh = make_model(extras=False, seed=5)
    resumed = Solver.resume(ck, fresh, data, verbose=False)
    assert resumed.iteration == 0
    assert all(np.isfinite(v).all() for v in fresh.params.values())
    np.testing.assert_array_equal(fresh.params["fc1/W"], make_model(extras=False).params["fc1/W"])


def test_lr_decay_float_and_schedule():
    data = blobs(n=40)
    s = Solver(make_model(extras=False), data, update_rule="sgd",
               optim_config={"learning_rate": 0.1}, lr_decay=0.5, batch_size=20, num_epochs=3,
               verbose=False).train()
    np.testing.assert_allclose(s.lr_history, [0.1, 0.05, 0.025])
    s = Solver(make_model(extras=False), data, update_rule="sgd_momentum",
               optim_config={"learning_rate": 0.1}, lr_decay=step_decay(2, 0.1), batch_size=20,
               num_epochs=3, verbose=False).train()
    np.testing.assert_allclose(s.lr_history, [0.1, 0.1, 0.01])


def test_best_params_restored_and_last_kept():
    data = blobs()
    s = Solver(make_model(extras=False), data, optim_config={"learning_rate": 1e-2},
               batch_size=40, num_epochs=5, verbose=False).train()
    assert s.best_val_acc == max(s.val_acc_history)
    for k, v in s.best_params.items():
        np.testing.assert_array_equal(s.model.params[k], v)
    assert s.last_params is not None and set(s.last_params) == set(s.best_params)
    # the restored parameters really score the best validation accuracy
    assert abs(s.model.accuracy(data["X_val"], data["y_val"]) - s.best_val_acc) < 1e-12


def test_unsupervised_mode_autoencoder():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((200, 2))
    X = (Z @ rng.standard_normal((2, 8))).astype(np.float32)  # rank-2 data
    model = Sequential([Dense(8, 4, seed=0), ReLU(), Dense(4, 8, seed=1, name="dec")],
                       loss="mse", input_shape=(8,))
    s = Solver(model, {"X_train": X[:150], "X_val": X[150:]}, unsupervised=True,
               optim_config={"learning_rate": 1e-2}, batch_size=25, num_epochs=20,
               verbose=False).train()
    assert s.train_acc_history == [] and len(s.val_loss_history) == 20
    assert s.val_loss_history[-1] < 0.5 * s.val_loss_history[0]
    assert s.best_val_loss == min(s.val_loss_history)


def test_bad_inputs():
    data = blobs(n=10)
    with pytest.raises(ValueError, match="floating"):
        Solver(make_model(), {**data, "X_train": data["X_train"].astype(np.int32)})
    with pytest.raises(ValueError, match="y_train"):
        Solver(make_model(), {"X_train": data["X_train"]})
    with pytest.raises(ValueError, match="unknown update rule"):
        Solver(make_model(), data, update_rule="sgdd")


def test_resume_into_wrong_model_says_what_differs(tmp_path):
    data = blobs(n=20)
    ck = tmp_path / "c.npz"
    Solver(make_model(extras=False), data, num_epochs=1, verbose=False, batch_size=10,
           checkpoint_path=ck).train()
    other = FullyConnectedNet([7], input_dim=6, num_classes=3)
    with pytest.raises(CheckpointError, match="shape mismatch|missing"):
        Solver.resume(ck, other, data)
    with pytest.raises(FileNotFoundError):
        Solver.resume(tmp_path / "nope.npz", other, data)


class Quadratic:
    """loss = |w|^2 with gradient 2w: SGD at rate 1.5 maps w to -2w, so the loss grows 4x per
    step and stays finite for hundreds of steps (a blow-up the NaN guard does not see)."""

    def __init__(self):
        self.params = {"w": np.ones(4)}

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((len(X), 3))
        w = self.params["w"]
        return float(np.sum(w * w)), {"w": 2 * w}


def quadratic_data():
    return {"X_train": np.zeros((40, 2), np.float32), "y_train": np.arange(40) % 3}


def test_divergence_guard_stops_a_finite_blowup(tmp_path):
    ck = tmp_path / "ck.npz"
    solver = Solver(Quadratic(), quadratic_data(), update_rule="sgd",
                    optim_config={"learning_rate": 1.5}, batch_size=4, num_epochs=3,
                    verbose=False, checkpoint_path=ck)
    with pytest.raises(TrainingDivergedError) as exc:
        solver.train()
    msg = str(exc.value)
    # first applied at the warm-up's end: 10 iterations, the loss then 4**9 times its start
    assert solver.iteration == 9 and "iteration 10" in msg
    assert "starting level 4" in msg and "moving average" in msg
    assert "Lower the learning rate (e.g. to 0.15)" in msg and str(ck) in msg
    assert all(np.isfinite(v) for v in solver.loss_history)
    resumed = Solver.resume(ck, Quadratic(), quadratic_data(), verbose=False)
    assert resumed.iteration == 0  # the checkpoint kept is the last good one


def test_divergence_guard_can_be_disabled_or_loosened():
    kw = dict(update_rule="sgd", optim_config={"learning_rate": 1.5}, batch_size=4,
              num_epochs=2, verbose=False)
    solver = Solver(Quadratic(), quadratic_data(), divergence_factor=None, **kw).train()
    assert solver.iteration == 20 and solver.loss_history[-1] == 4.0 * 4**19
    # a larger factor fires later: 1e6 times the start needs about 13 more steps of 4x
    with pytest.raises(TrainingDivergedError):
        Solver(Quadratic(), quadratic_data(), divergence_factor=1e6, **kw).train()
    for bad in (1.0, 0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="divergence_factor"):
            Solver(Quadratic(), quadratic_data(), divergence_factor=bad, **kw)


def test_divergence_guard_after_resume_fires_where_the_whole_run_would(tmp_path):
    kw = dict(update_rule="sgd", optim_config={"learning_rate": 1.5}, batch_size=4,
              num_epochs=3, verbose=False, checkpoint_every=3)
    ck = tmp_path / "ck.npz"
    s = Solver(Quadratic(), quadratic_data(), checkpoint_path=ck, callbacks=[StopAt(7)], **kw)
    with pytest.raises(KeyboardInterrupt):
        s.train()
    resumed = Solver.resume(ck, Quadratic(), quadratic_data(), verbose=False)
    assert resumed.iteration == 6
    with pytest.raises(TrainingDivergedError, match="iteration 10 "):
        resumed.train()


def test_divergence_guard_floor_is_the_chance_loss():
    """A run that starts far below ln(C) (a trained model) may wobble above its first loss:
    the reference is then ln(C), not the tiny first loss."""

    class Wobble(Quadratic):
        def __init__(self):
            self.params = {"w": np.full(4, 0.01)}  # first loss 4e-4, ln 3 = 1.1

    s = Solver(Wobble(), quadratic_data(), update_rule="sgd",
               optim_config={"learning_rate": 1.5}, batch_size=4, num_epochs=1, verbose=False)
    with pytest.raises(TrainingDivergedError, match=r"starting level 1\.099"):
        s.train()
    # ten times the first loss was passed at the third step; the guard waited for ln(3)
    assert s.loss_history[2] > 10 * s.loss_history[0] and s.loss_history[-1] > 10 * np.log(3)
