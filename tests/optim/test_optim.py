"""Update rules and learning-rate schedules.

References are computed by hand (scalar arithmetic written out below) for a few steps; the
float64 comparisons use rtol 1e-12 unless stated. Every rule must also minimise a convex
quadratic and keep float32 as float32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from convnet.optim import (
    UPDATE_RULES,
    adam,
    constant,
    cosine_decay,
    exponential_decay,
    get_update_rule,
    learning_rate_at,
    nesterov,
    rmsprop,
    sgd,
    sgd_momentum,
    step_decay,
)


def run(rule, w, grads, config):
    out = []
    for g in grads:
        w, config = rule(w, np.full_like(w, g), config)
        out.append(float(w.ravel()[0]))
    return out, config


# --- hand-computed references (w0 = 1.0) ------------------------------------------------------


def test_sgd_hand_computed():
    # 1 - 0.1 * 0.5 = 0.95; 0.95 - 0.1 * (-1) = 1.05
    ws, _ = run(sgd, np.array([1.0]), [0.5, -1.0], {"learning_rate": 0.1})
    np.testing.assert_allclose(ws, [0.95, 1.05], rtol=1e-12)


def test_sgd_momentum_hand_computed():
    # v1 = -0.05, w1 = 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095, w2 = 0.855;
    # v3 = -0.0855 - 0.05 = -0.1355, w3 = 0.7195
    ws, cfg = run(sgd_momentum, np.array([1.0]), [0.5] * 3, {"learning_rate": 0.1, "momentum": 0.9})
    np.testing.assert_allclose(ws, [0.95, 0.855, 0.7195], rtol=1e-12)
    np.testing.assert_allclose(cfg["velocity"], [-0.1355], rtol=1e-12)


def test_nesterov_hand_computed():
    # w1 = 1 - 0.9 * 0 + 1.9 * (-0.05) = 0.905
    # w2 = 0.905 - 0.9 * (-0.05) + 1.9 * (-0.095) = 0.7695
    ws, _ = run(nesterov, np.array([1.0]), [0.5] * 2, {"learning_rate": 0.1, "momentum": 0.9})
    np.testing.assert_allclose(ws, [0.905, 0.7695], rtol=1e-12)


def test_nesterov_equals_keras_form():
    # Keras: m = mu m - lr g; w += mu m - lr g.  Same numbers for random gradients.
    rng = np.random.default_rng(1)
    w = rng.standard_normal(7)
    wk, m, cfg = w.copy(), np.zeros(7), {"learning_rate": 0.05, "momentum": 0.8}
    for _ in range(5):
        g = rng.standard_normal(7)
        w, cfg = nesterov(w, g, cfg)
        m = 0.8 * m - 0.05 * g
        wk = wk + 0.8 * m - 0.05 * g
    np.testing.assert_allclose(w, wk, rtol=1e-12)


def test_rmsprop_hand_computed():
    # cache1 = 0.1 * 0.25 = 0.025, w1 = 1 - 0.01 * 0.5 / sqrt(0.025) = 0.96837722540
    # cache2 = 0.9 * 0.025 + 0.025 = 0.0475, w2 = w1 - 0.005 / sqrt(0.0475) = 0.94543565306
    ws, cfg = run(rmsprop, np.array([1.0]), [0.5] * 2, {"learning_rate": 0.01, "decay_rate": 0.9})
    np.testing.assert_allclose(ws, [0.968377225398316, 0.9454356530638914], rtol=1e-12)
    np.testing.assert_allclose(cfg["cache"], [0.0475], rtol=1e-12)


def test_adam_hand_computed():
    # t=1: m_hat = dw, v_hat = dw^2 so the step is lr * sign(dw): w1 = 0.9 (up to eps).
    # t=2: m = 0.05*0.9 - 0.1 = -0.055, v = 0.00025*0.999 + 0.001 = 0.00124975,
    #      m_hat = -0.055/0.19, v_hat = 0.00124975/0.001999, w2 = 0.9 + 0.1*0.28947/0.79069
    cfg = {"learning_rate": 0.1}
    ws, cfg = run(adam, np.array([1.0]), [0.5, -1.0, 0.25], cfg)
    np.testing.assert_allclose(
        ws, [0.9000000019999999, 0.9366103542405653, 0.950279420338976], rtol=1e-12
    )
    assert cfg["t"] == 3
    m2 = 0.9 * 0.05 - 0.1
    v2 = 0.999 * 0.00025 + 0.001
    w2 = 0.9 - 0.1 * (m2 / 0.19) / (math.sqrt(v2 / (1 - 0.999**2)) + 1e-8)
    assert ws[1] == pytest.approx(w2, rel=1e-7)


def test_adam_epsilon_placement_hat():
    # 'hat': w -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps).  With a big eps the two
    # placements differ visibly at t=1: corrected: lr*g/(|g|+eps); hat: lr*g/(|g|+eps/sqrt(1-b2)).
    w = np.array([0.0])
    g = np.array([0.5])
    wc, _ = adam(w, g, {"learning_rate": 1.0, "epsilon": 0.1})
    wh, _ = adam(w, g, {"learning_rate": 1.0, "epsilon": 0.1, "epsilon_placement": "hat"})
    np.testing.assert_allclose(wc, [-0.5 / 0.6], rtol=1e-12)
    np.testing.assert_allclose(wh, [-0.5 / (0.5 + 0.1 / math.sqrt(0.001))], rtol=1e-12)


def test_rmsprop_epsilon_inside():
    w, _ = rmsprop(
        np.array([0.0]),
        np.array([0.5]),
        {"learning_rate": 1.0, "decay_rate": 0.0, "epsilon": 0.75, "epsilon_placement": "inside"},
    )
    np.testing.assert_allclose(w, [-0.5 / math.sqrt(0.25 + 0.75)], rtol=1e-12)


def test_weight_decay_is_decoupled():
    # sgd: w - lr*wd*w - lr*g; adam: decay applied on top of the unchanged adaptive step.
    w = np.array([2.0])
    ws, _ = sgd(w, np.array([0.5]), {"learning_rate": 0.1, "weight_decay": 0.5})
    np.testing.assert_allclose(ws, [2.0 - 0.1 * 0.5 * 2.0 - 0.05], rtol=1e-12)
    wa, _ = adam(w, np.array([0.5]), {"learning_rate": 0.1, "weight_decay": 0.5})
    wa0, _ = adam(w, np.array([0.5]), {"learning_rate": 0.1})
    np.testing.assert_allclose(wa - wa0, [-0.1 * 0.5 * 2.0], rtol=1e-9)


# --- properties shared by every rule ----------------------------------------------------------


LRS = {"sgd": 0.1, "sgd_momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.01, "adam": 0.05}


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_minimises_convex_quadratic(name):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((6, 6))
    a = q @ q.T + 0.5 * np.eye(6)  # SPD, condition number moderate
    a /= np.linalg.eigvalsh(a).max()
    b = rng.standard_normal(6)
    w_star = np.linalg.solve(a, b)

    def f(w):
        return 0.5 * w @ a @ w - b @ w

    rule = UPDATE_RULES[name]
    w = np.zeros(6)
    cfg = {"learning_rate": LRS[name]}
    f0 = f(w)
    for _ in range(3000):
        w, cfg = rule(w, a @ w - b, cfg)
    assert f(w) < f0
    # adaptive rules hover around the optimum at a distance ~ learning rate
    assert np.linalg.norm(w - w_star) < 0.05 * np.linalg.norm(w_star), name


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_keeps_float32(name):
    rule = UPDATE_RULES[name]
    w = np.ones((2, 3, 4, 4), dtype=np.float32)  # an input image works like a weight
    # a float64 gradient and np.float64 hyperparameters must not promote w or its state
    dw = np.full((2, 3, 4, 4), 0.5, dtype=np.float64)
    cfg = {"learning_rate": np.float64(1e-2)}
    for _ in range(2):
        w, cfg = rule(w, dw, cfg)
    assert w.dtype == np.float32 and w.shape == (2, 3, 4, 4)
    for key in ("velocity", "cache", "m", "v"):
        if key in cfg:
            assert cfg[key].dtype == np.float32, key
    assert np.all(w < 1.0)


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_defaults_filled_and_input_not_mutated(name):
    w = np.linspace(-1, 1, 6).reshape(2, 3)
    w0 = w.copy()
    nw, cfg = UPDATE_RULES[name](w, np.ones_like(w), None)
    np.testing.assert_array_equal(w, w0)
    assert "learning_rate" in cfg and nw.shape == w.shape


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_bad_input(name):
    rule = UPDATE_RULES[name]
    with pytest.raises(ValueError, match=name):
        rule(np.ones(3), np.ones(4), {})
    with pytest.raises(ValueError, match="floating"):
        rule(np.ones(3, dtype=np.int64), np.ones(3), {})
    if name != "sgd":
        _, cfg = rule(np.ones(3), np.ones(3), {})
        with pytest.raises(ValueError, match="one config dict per parameter"):
            rule(np.ones(4), np.ones(4), cfg)


def test_get_update_rule():
    assert get_update_rule("adam") is adam
    with pytest.raises(ValueError, match="unknown update rule"):
        get_update_rule("adamw")


# --- schedules --------------------------------------------------------------------------------


def test_schedules():
    assert [constant()(e) for e in range(3)] == [1.0, 1.0, 1.0]
    s = step_decay(2, 0.5)
    assert [s(e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    x = exponential_decay(0.9)
    np.testing.assert_allclose([x(e) for e in range(3)], [1.0, 0.9, 0.81])
    c = cosine_decay(4, min_factor=0.1)
    np.testing.assert_allclose(
        [c(e) for e in range(6)],
        [
            1.0,
            0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2,
            0.55,
            0.1 + 0.9 * (1 + math.cos(3 * math.pi / 4)) / 2,
            0.1,
            0.1,
        ],
    )
    w = cosine_decay(5, warmup_epochs=1)
    assert w(0) == 0.5 and w(1) == 1.0
    assert learning_rate_at(0.1, s, 2) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="step_decay"):
        step_decay(0)
    with pytest.raises(ValueError, match="epoch"):
        s(-1)


# Keras parity (float64, every rule, epsilon placements, KERAS_DEFAULTS) is tested in
# tests/interop/test_keras_optim.py.
