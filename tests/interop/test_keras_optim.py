"""Update rules against the Keras 3 optimisers with matching hyper-parameters.

Epsilon placement is where the libraries differ (see convnet/optim/rules.py):

* Keras ``RMSprop``: ``lr * g / sqrt(velocity + eps)`` -> ``epsilon_placement='inside'``
  (cs231n puts eps outside the square root);
* Keras ``Adam``: ``lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1-b2^t)/(1-b1^t)``, eps on
  the *uncorrected* ``sqrt(v)`` -> ``epsilon_placement='hat'`` (cs231n: ``'corrected'``).

Everything runs in float64 (Keras variables and optimiser arithmetic follow the variable
dtype), so the trajectories agree to ~1e-15; tolerance 1e-12 relative. One catch: Keras keeps
the learning rate in a *float32* variable and rounds momentum/beta_1/beta_2 through float32
too (0.01 becomes 0.009999999776; with beta_2 = 0.99 Adam's first step is off by 4e-7), so
the tests use hyper-parameters exact in float32 (dyadic: 0.125, 0.75, 31/32, ...), and the
defaults test rounds Keras' defaults through float32 on our side.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnet.optim import rules

pytestmark = pytest.mark.tf

RTOL = 1e-12


@pytest.fixture(scope="module")
def keras():
    from convnet.interop import import_keras

    return import_keras()


def _keras_steps(keras, opt, w0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    var = keras.Variable(w0.copy(), dtype="float64")
    out = []
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g, dtype="float64"), var)])
        out.append(np.array(var.numpy()))
    return out


def _convnet_steps(rule, config: dict, w0: np.ndarray, grads: list[np.ndarray]) -> list:
    w, out = w0.copy(), []
    for g in grads:
        w, config = rule(w, g, config)
        out.append(w.copy())
    return out


def _problem(seed: int, small: bool = False):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((4, 5))
    # Tiny gradients make epsilon placement visible (sqrt(v) is ~ |g|, comparable to eps).
    scale = 1e-7 if small else 1.0
    grads = [scale * rng.standard_normal((4, 5)) for _ in range(3)]
    return w0, grads


def _assert_close(a: np.ndarray, b: np.ndarray, w0: np.ndarray, rtol: float, what: str) -> None:
    """Updates agree to ``rtol`` relative to the update size, plus the rounding of ``w``
    itself (algebraically equal forms, e.g. the two Nesterov forms, round w differently,
    which matters when the update is ~1e-8 of w)."""
    err = float(np.max(np.abs(a - b)))
    tol = rtol * float(np.max(np.abs(b - w0))) + 8 * np.finfo(np.float64).eps * float(
        np.max(np.abs(w0))
    )
    assert err <= tol, f"{what}: max |difference| {err:.3e} > tolerance {tol:.3e}"


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


CASES = [
    ("sgd", lambda k: k.optimizers.SGD(learning_rate=0.125),
     {"learning_rate": 0.125}),
    ("sgd_momentum", lambda k: k.optimizers.SGD(learning_rate=0.0625, momentum=0.75),
     {"learning_rate": 0.0625, "momentum": 0.75}),
    ("nesterov", lambda k: k.optimizers.SGD(learning_rate=0.0625, momentum=0.75, nesterov=True),
     {"learning_rate": 0.0625, "momentum": 0.75}),
    ("rmsprop", lambda k: k.optimizers.RMSprop(learning_rate=2**-7, rho=0.875, epsilon=1e-7),
     {"learning_rate": 2**-7, "decay_rate": 0.875, "epsilon": 1e-7, "epsilon_placement": "inside"}),
    ("adam", lambda k: k.optimizers.Adam(learning_rate=2**-7, beta_1=0.75, beta_2=0.96875,
                                         epsilon=1e-7),
     {"learning_rate": 2**-7, "beta1": 0.75, "beta2": 0.96875, "epsilon": 1e-7,
      "epsilon_placement": "hat"}),
]


@pytest.mark.parametrize("small", [False, True], ids=["unit-grads", "tiny-grads"])
@pytest.mark.parametrize("name,make_opt,config", CASES, ids=[c[0] for c in CASES])
def test_rule_matches_keras_optimizer(keras, name, make_opt, config, small):
    w0, grads = _problem(1, small)
    ours = _convnet_steps(getattr(rules, name), dict(config), w0, grads)
    theirs = _keras_steps(keras, make_opt(keras), w0, grads)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        _assert_close(a, b, w0, RTOL, f"{name} step {step}")


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "nesterov", "rmsprop", "adam"])
def test_keras_defaults_table_matches_default_optimizers(keras, name):
    """``rules.KERAS_DEFAULTS[name]`` is documented to equal the Keras default optimiser."""
    make = {
        "sgd": lambda: keras.optimizers.SGD(),
        "sgd_momentum": lambda: keras.optimizers.SGD(momentum=0.9),
        "nesterov": lambda: keras.optimizers.SGD(momentum=0.9, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(),
        "adam": lambda: keras.optimizers.Adam(),
    }[name]
    w0, grads = _problem(2, small=True)
    config = dict(rules.KERAS_DEFAULTS[name])
    for k in ("learning_rate", "momentum"):  # Keras rounds these through float32
        if k in config:
            config[k] = float(np.float32(config[k]))
    ours = _convnet_steps(getattr(rules, name), config, w0, grads)
    theirs = _keras_steps(keras, make(), w0, grads)
    # Keras Adam takes beta**t of the float32-rounded betas but (1 - beta) of the exact ones,
    # which no config reproduces: ~7e-6 relative on these epsilon-sized gradients.
    tol = 2e-5 if name == "adam" else RTOL
    _assert_close(ours[-1], theirs[-1], w0, tol, name)


@pytest.mark.parametrize(
    "name,config,make_opt",
    [
        ("rmsprop", {"learning_rate": 2**-7, "decay_rate": 0.9, "epsilon": 1e-7},
         lambda k: k.optimizers.RMSprop(learning_rate=2**-7, rho=0.9, epsilon=1e-7)),
        ("adam", {"learning_rate": 2**-7, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
         lambda k: k.optimizers.Adam(learning_rate=2**-7, epsilon=1e-7)),
    ],
)
def test_cs231n_epsilon_placement_differs_from_keras(keras, name, config, make_opt):
    """The default (cs231n) placement is *not* Keras': with gradients of the size of epsilon
    the first step differs by far more than rounding, so matching needs the config option."""
    w0, grads = _problem(3, small=True)
    ours = _convnet_steps(getattr(rules, name), dict(config), w0, grads[:1])
    theirs = _keras_steps(keras, make_opt(keras), w0, grads[:1])
    assert _rel(ours[0] - w0, theirs[0] - w0) > 1e-3
