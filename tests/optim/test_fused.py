"""The fused in-place optimiser step (convnet.optim.fused) against the reference rules.

The kernels evaluate each rule's formula operation by operation in the rule's precision, so
the comparison is exact: measured maximum difference from ``rules.adam`` (and ``sgd``,
``sgd_momentum``, ``nesterov``, ``rmsprop``) over several steps is 0 in float32 and in
float64, for both epsilon placements, with and without weight decay, for the Numba kernels
and the NumPy fallback alike. The tests therefore assert bit equality of parameters and state.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnet.models import FullyConnectedNet
from convnet.optim import fused, rules
from convnet.solver import Solver

RULES = {"sgd": rules.sgd, "sgd_momentum": rules.sgd_momentum, "nesterov": rules.nesterov,
         "rmsprop": rules.rmsprop, "adam": rules.adam}
SIZES = [(1,), (15,), (17,), (3, 5, 7), (1000,)]


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test with the Numba kernels and again with the pure-NumPy fallback."""
    if request.param == "numba" and not fused.NUMBA_AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(fused, "USE_NUMBA", request.param == "numba")
    return request.param


def gradients(shape, dtype, steps, seed=0):
    rng = np.random.default_rng(seed)
    # magnitudes from 1e-6 to 1e2, so that epsilon and the bias correction both matter
    return [np.array(rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 2, shape), dtype)
            for _ in range(steps)]


def assert_same_config(ref, got):
    assert list(ref) == list(got)  # same keys in the same order (checkpoints keep it)
    for k, v in ref.items():
        if isinstance(v, np.ndarray):
            assert isinstance(got[k], np.ndarray) and got[k].dtype == v.dtype, k
            np.testing.assert_array_equal(got[k], v, err_msg=k)
        else:
            assert got[k] == v and type(got[k]) is type(v), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("extra", [{}, {"epsilon_placement": "hat"}, {"weight_decay": 0.1},
                                   {"epsilon_placement": "hat", "weight_decay": 0.01,
                                    "learning_rate": 0.5, "beta1": 0.5}])
def test_adam_matches_the_rule_bit_for_bit(backend, dtype, shape, extra):
    w0 = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    w_ref, cfg_ref = w0.copy(), dict(extra)
    w, cfg = w0.copy(), dict(extra)
    for g in gradients(shape, dtype, steps=5):
        w_ref, cfg_ref = rules.adam(w_ref, g, cfg_ref)
        assert fused.fused_step(rules.adam, w, g, cfg) is None
    assert w.dtype == dtype
    np.testing.assert_array_equal(w, w_ref)
    assert_same_config(cfg_ref, cfg)
    assert cfg["t"] == 5


OTHER_CASES = [(name, extra) for name in ("sgd", "sgd_momentum", "nesterov", "rmsprop")
               for extra in ({}, {"weight_decay": 0.1, "learning_rate": 0.3})]
OTHER_CASES.append(("rmsprop", {"epsilon_placement": "inside", "decay_rate": 0.9}))


@pytest.mark.parametrize("name, extra", OTHER_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_other_rules_match_the_rule_bit_for_bit(backend, name, dtype, extra):
    rule = RULES[name]
    w0 = np.random.default_rng(2).standard_normal((7, 19)).astype(dtype)
    w_ref, cfg_ref = w0.copy(), dict(extra)
    w, cfg = w0.copy(), dict(extra)
    for g in gradients(w0.shape, dtype, steps=4):
        w_ref, cfg_ref = rule(w_ref, g, cfg_ref)
        assert fused.fused_step(rule, w, g, cfg) is None
    np.testing.assert_array_equal(w, w_ref)
    assert_same_config(cfg_ref, cfg)


def test_updates_in_place_and_never_writes_the_gradient(backend):
    w = np.linspace(-1, 1, 33, dtype=np.float32)
    g = np.ones_like(w)
    cfg = {}
    assert fused.fused_step(rules.adam, w, g, cfg) is None
    m, v = cfg["m"], cfg["v"]
    w_before = w.copy()
    assert fused.fused_step(rules.adam, w, g, cfg) is None
    assert cfg["m"] is m and cfg["v"] is v  # no new arrays after the first step
    assert not np.array_equal(w, w_before)  # written into w itself
    np.testing.assert_array_equal(g, np.ones_like(w))


def test_a_non_contiguous_gradient_is_read_correctly(backend):
    w = np.random.default_rng(3).standard_normal((6, 5))
    G = np.random.default_rng(4).standard_normal((5, 6))
    w_ref, cfg_ref = rules.adam(w.copy(), G.T, {})
    cfg = {}
    assert fused.fused_step(rules.adam, w, G.T, cfg) is None
    np.testing.assert_array_equal(w, w_ref)
    assert_same_config(cfg_ref, cfg)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "rmsprop", "adam"])
def test_non_finite_gradient_leaves_everything_untouched(backend, bad, name):
    rule = RULES[name]
    w = np.random.default_rng(5).standard_normal(37).astype(np.float32)
    cfg = {"learning_rate": 1e-2}
    assert fused.fused_step(rule, w, np.ones_like(w), cfg) is None  # state exists now
    kept_w = w.copy()
    kept = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in cfg.items()}
    for pos in (0, 18, 36):
        g = np.ones_like(w)
        g[pos] = bad
        assert fused.fused_step(rule, w, g, cfg) == fused.GRADIENT_NOT_FINITE
        np.testing.assert_array_equal(w, kept_w)
        assert_same_config(kept, cfg)
    # on the very first step the config stays as given (no defaults, no state yet)
    fresh = {"learning_rate": 1e-2}
    g = np.full_like(w, bad)
    assert fused.fused_step(rule, w, g, fresh) == fused.GRADIENT_NOT_FINITE
    assert fresh == {"learning_rate": 1e-2}


def test_non_finite_result_is_reported_and_equals_the_rules(backend):
    w = np.ones(21, np.float32)
    g = np.ones_like(w)
    g[3] = 3e38
    cfg = {"learning_rate": 10.0}
    with np.errstate(over="ignore"):
        ref, _ = rules.sgd(w.copy(), g, dict(cfg))
    assert fused.fused_step(rules.sgd, w, g, cfg) == fused.RESULT_NOT_FINITE
    np.testing.assert_array_equal(w, ref)  # -inf at 3, the rest updated as by the rule
    assert np.isneginf(w[3]) and np.isfinite(np.delete(w, 3)).all()


def test_not_applicable_inputs_are_left_to_the_rule():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((8, 6))
    readonly = w.copy()
    readonly.flags.writeable = False
    cases = [
        (rules.adam, w.T.copy().T, w),  # not C-contiguous
        (rules.adam, w[:, :3], w[:, :3]),  # a view: does not own its memory
        (rules.adam, readonly, w),
        (rules.adam, np.arange(48).reshape(8, 6), w),  # integer dtype
        (rules.adam, w.astype(np.float16), w.astype(np.float16)),
        (rules.adam, w.copy(), w.astype(np.float32)),  # gradient of another dtype
        (rules.adam, w.copy(), w[:4]),  # another shape (the rule raises its error)
        (rules.adam, w.copy(), w.tolist()),  # not an array
        (lambda w, dw, c: (w - dw, c), w.copy(), w),  # a user's rule
    ]
    for rule, param, grad in cases:
        kept = param.copy()
        cfg = {"learning_rate": 0.1}
        assert fused.fused_step(rule, param, grad, cfg) == fused.NOT_APPLICABLE
        np.testing.assert_array_equal(param, kept)
        assert cfg == {"learning_rate": 0.1}
    for rule, bad_cfg in ((rules.adam, {"m": np.zeros(3)}),
                          (rules.adam, {"epsilon_placement": "inside"}),
                          (rules.rmsprop, {"epsilon_placement": "hat"}),
                          (rules.rmsprop, {"cache": np.zeros(48)}),
                          (rules.sgd_momentum, {"velocity": np.zeros((6, 8))})):
        param = w.copy()
        assert fused.fused_step(rule, param, w, dict(bad_cfg)) == fused.NOT_APPLICABLE
        np.testing.assert_array_equal(param, w)
        with pytest.raises(ValueError):
            rule(param, w, dict(bad_cfg))  # the rule says what is wrong


def test_state_arrays_it_does_not_own_are_copied_not_written(backend):
    """A checkpoint's arrays (views, read-only, another dtype) are replaced, never written."""
    w0 = np.random.default_rng(7).standard_normal(40).astype(np.float32)
    g = np.random.default_rng(8).standard_normal(40).astype(np.float32)
    m = np.full(80, 0.1, np.float32)[::2]
    v = np.full(40, 0.2, np.float64)  # another dtype: the rule casts it
    v.flags.writeable = False
    cfg = {"m": m, "v": v, "t": 3}
    ref_w, ref_cfg = rules.adam(w0.copy(), g, dict(cfg))
    w = w0.copy()
    assert fused.fused_step(rules.adam, w, g, cfg) is None
    np.testing.assert_array_equal(w, ref_w)
    assert_same_config(ref_cfg, cfg)
    assert (m == np.float32(0.1)).all() and (v == 0.2).all()
    assert cfg["m"].flags.owndata and cfg["v"].dtype == np.float32


def blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, 6)) * 3
    y = rng.integers(0, 3, 2 * n)
    X = (centers[y] + rng.standard_normal((2 * n, 6))).astype(np.float32)
    return {"X_train": X[:n], "y_train": y[:n], "X_val": X[n:], "y_val": y[n:]}


def train(update_rule, enabled, monkeypatch, **optim):
    monkeypatch.setattr(fused, "ENABLED", enabled)
    model = FullyConnectedNet([16, 8], input_dim=6, num_classes=3, batchnorm=True, reg=1e-3,
                              seed=0)
    first = model.params["fc1/W"]
    s = Solver(model, blobs(), update_rule=update_rule, optim_config=optim, batch_size=20,
               num_epochs=3, verbose=False, restore_best=False).train()
    return s, model.params["fc1/W"] is first


@pytest.mark.parametrize("update_rule, optim", [
    ("adam", {"learning_rate": 1e-2, "weight_decay": 1e-3}),
    ("adam", {"learning_rate": 1e-2, "epsilon_placement": "hat"}),
    ("sgd_momentum", {"learning_rate": 5e-2}),
    ("nesterov", {"learning_rate": 5e-2}),
    ("sgd", {"learning_rate": 1e-1}),
    ("rmsprop", {"learning_rate": 1e-2, "epsilon_placement": "inside"}),
])
def test_solver_trains_identically_with_and_without_the_fused_step(backend, monkeypatch,
                                                                    update_rule, optim):
    ref, ref_same = train(update_rule, False, monkeypatch, **optim)
    got, got_same = train(update_rule, True, monkeypatch, **optim)
    assert got_same and not ref_same  # in place vs a new array per step
    assert got.loss_history == ref.loss_history
    assert got.val_acc_history == ref.val_acc_history
    for k, v in ref.model.params.items():
        np.testing.assert_array_equal(got.model.params[k], v, err_msg=k)
    for k, cfg in ref.optim_configs.items():
        assert_same_config(cfg, got.optim_configs[k])


class OneParam:
    """A model whose loss is always 1 and whose gradient is always x."""

    def __init__(self, x):
        self.x = np.asarray(x, np.float32)
        self.params = {"w": np.ones_like(self.x)}

    def loss(self, X, y=None):
        if y is None:
            return np.zeros((len(X), 2))
        return 1.0, {"w": self.x.copy()}


@pytest.mark.parametrize("enabled", [True, False])
def test_solver_messages_for_non_finite_gradient_and_result(monkeypatch, enabled):
    from convnet.errors import TrainingDivergedError

    monkeypatch.setattr(fused, "ENABLED", enabled)
    data = {"X_train": np.zeros((4, 1), np.float32), "y_train": np.zeros(4, np.int64)}
    solver = Solver(OneParam([1.0, np.inf]), data, update_rule="sgd", verbose=False)
    with pytest.raises(TrainingDivergedError, match="the gradient of w is not finite"):
        solver.train()
    np.testing.assert_array_equal(solver.model.params["w"], [1.0, 1.0])
    solver = Solver(OneParam([1.0, 3e38]), data, update_rule="sgd",
                    optim_config={"learning_rate": 10.0}, verbose=False)
    with pytest.raises(TrainingDivergedError,
                       match="parameter w became non-finite after the update"):
        solver.train()
