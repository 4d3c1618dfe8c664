"""First-order update rules with the cs231n contract ``next_w, config = rule(w, dw, config)``.

Every rule takes

- w: an array of any shape (weights, a bias, or an *input image* being optimised);
- dw: the gradient of the loss with respect to w, same shape;
- config: a dict holding hyperparameters and the rule's state, or None for the defaults.

and returns ``(next_w, config)``: a new array of w's shape and dtype, and the same dict,
updated. Missing hyperparameters are filled in with ``config.setdefault`` so a caller can
inspect every value actually used. State arrays (``velocity``, ``cache``, ``m``, ``v``) have
w's dtype, so float32 training stays float32 and float64 gradient checks stay float64. One
config dict belongs to exactly one parameter: reusing it for a parameter of another shape
raises ``ValueError``.

The rules are ordered by increasing complexity, each one a small step from the previous:

    sgd            w -= lr * dw
    sgd_momentum   + a velocity (running sum of past steps)
    nesterov       + the velocity's look-ahead
    rmsprop        sgd with a per-element step size from a running mean of dw**2
    adam           momentum (first moment) + rmsprop (second moment) + bias correction

Common hyperparameters:

- learning_rate: step size (scalar).
- weight_decay: *decoupled* weight decay (Loshchilov & Hutter; what Keras 3's
  ``weight_decay=`` does): before the gradient step, ``w <- w - learning_rate *
  weight_decay * w``. For plain ``sgd`` this equals an L2 penalty ``0.5 * wd * ||w||^2``
  in the loss; for the adaptive rules it does not. Default 0. (The models' ``reg`` is the
  cs231n L2 term in the loss itself.)

Where epsilon goes (``epsilon_placement``) matters when matching another library to the
last digit:

- rmsprop: ``'outside'`` (cs231n, default) ``dw / (sqrt(cache) + eps)``; ``'inside'``
  (Keras ``RMSprop``) ``dw / sqrt(cache + eps)``.
- adam: ``'corrected'`` (cs231n and Algorithm 1 of Kingma & Ba, default)
  ``m_hat / (sqrt(v_hat) + eps)`` with bias-corrected ``m_hat``, ``v_hat``; ``'hat'``
  (Keras/TensorFlow ``Adam``, the "epsilon hat" form at the end of section 2 of the paper)
  ``lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``,
  i.e. epsilon is added to the *uncorrected* ``sqrt(v)``. The two differ by a factor
  ``sqrt(1 - beta2**t)`` on epsilon, which matters in the first steps.

``KERAS_DEFAULTS[name]`` holds the settings with which one step matches the Keras 3
optimiser of the same name built with its default arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Config = dict[str, Any]
UpdateRule = Callable[[np.ndarray, np.ndarray, "Config | None"], tuple[np.ndarray, Config]]

__all__ = [
    "sgd",
    "sgd_momentum",
    "nesterov",
    "rmsprop",
    "adam",
    "UPDATE_RULES",
    "KERAS_DEFAULTS",
    "get_update_rule",
]


def _check(name: str, w: np.ndarray, dw: np.ndarray, config: Config | None) -> Config:
    """Validate the arguments shared by every rule; return the config dict to use."""
    if not isinstance(w, np.ndarray) or not np.issubdtype(w.dtype, np.floating):
        raise ValueError(
            f"{name}: w must be a floating-point ndarray, got "
            f"{type(w).__name__} of dtype {getattr(w, 'dtype', None)}"
        )
    dw = np.asarray(dw)
    if dw.shape != w.shape:
        raise ValueError(f"{name}: dw must have the shape of w {w.shape}, got {dw.shape}")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise ValueError(f"{name}: config must be a dict or None, got {type(config).__name__}")
    return config


def _scalar(config: Config, key: str) -> float:
    # Python floats do not upcast float32 arrays (NEP 50), while np.float64 scalars would.
    return float(config[key])


def _state(name: str, config: Config, key: str, w: np.ndarray) -> np.ndarray:
    """Return state array ``config[key]`` (zeros like w on first use) in w's dtype."""
    s = config.get(key)
    if s is None:
        return np.zeros_like(w)
    s = np.asarray(s)
    if s.shape != w.shape:
        raise ValueError(
            f"{name}: config[{key!r}] has shape {s.shape} but w has shape {w.shape}; "
            "use one config dict per parameter"
        )
    return s.astype(w.dtype, copy=False)


def _decay(w: np.ndarray, config: Config) -> np.ndarray:
    """Apply decoupled weight decay (a no-op when weight_decay is 0)."""
    wd = float(config.setdefault("weight_decay", 0.0))
    if wd == 0.0:
        return w
    return w - _scalar(config, "learning_rate") * wd * w


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla stochastic gradient descent: ``w - learning_rate * dw``.

    Inputs:
    - w: array of any shape (floating point).
    - dw: gradient, same shape as w.
    - config: learning_rate (default 1e-2), weight_decay (default 0).

    Returns:
    - next_w: same shape and dtype as w.
    - config: the updated dict.
    """
    config = _check("sgd", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    base = _decay(w, config)
    next_w = base - _scalar(config, "learning_rate") * dw
    return next_w.astype(w.dtype, copy=False), config


def _momentum_step(
    name: str, w: np.ndarray, dw: np.ndarray, config: Config | None, look_ahead: bool
) -> tuple[np.ndarray, Config]:
    config = _check(name, w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    lr, mu = _scalar(config, "learning_rate"), _scalar(config, "momentum")
    v_prev = _state(name, config, "velocity", w)
    v = mu * v_prev - lr * dw
    base = _decay(w, config)
    if look_ahead:
        # Nesterov (cs231n / Keras form): evaluate the step at the look-ahead point;
        # w + v + mu * (v - v_prev) == w + mu * v - lr * dw.
        next_w = base - mu * v_prev + (1 + mu) * v
    else:
        next_w = base + v
    config["velocity"] = v.astype(w.dtype, copy=False)
    return next_w.astype(w.dtype, copy=False), config


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """SGD with momentum: ``v = momentum * v - learning_rate * dw; w + v``.

    Inputs:
    - w, dw: arrays of the same shape (floating point).
    - config: learning_rate (1e-2), momentum (0.9), weight_decay (0);
      state velocity (zeros like w on the first call).

    Returns:
    - next_w: same shape and dtype as w.
    - config: the updated dict (config['velocity'] has w's shape and dtype).
    """
    return _momentum_step("sgd_momentum", w, dw, config, look_ahead=False)


def nesterov(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """Nesterov momentum: ``v' = mu v - lr dw; w - mu v + (1 + mu) v'``.

    This is the cs231n form, algebraically identical to Keras ``SGD(nesterov=True)``
    (``w + mu v' - lr dw``).

    Inputs:
    - w, dw: arrays of the same shape (floating point).
    - config: learning_rate (1e-2), momentum (0.9), weight_decay (0); state velocity.

    Returns:
    - next_w: same shape and dtype as w.
    - config: the updated dict.
    """
    return _momentum_step("nesterov", w, dw, config, look_ahead=True)


def _rms(sq_mean: np.ndarray, eps: float, placement: str, name: str) -> np.ndarray:
    """The denominator of an adaptive step, with epsilon where ``placement`` says."""
    if placement == "outside":
        return np.sqrt(sq_mean) + eps
    if placement == "inside":
        return np.sqrt(sq_mean + eps)
    raise ValueError(f"{name}: unknown epsilon_placement {placement!r}")


def rmsprop(
    w: np.ndarray, dw: np.ndarray, config: Config | None = None
) -> tuple[np.ndarray, Config]:
    """RMSProp: a per-element step size from a running mean of squared gradients.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2``;
    ``w - learning_rate * dw / (sqrt(cache) + epsilon)``.

    Inputs:
    - w, dw: arrays of the same shape (floating point).
    - config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8),
      epsilon_placement ('outside' | 'inside', see the module docstring), weight_decay (0);
      state cache (zeros like w on the first call).

    Returns:
    - next_w: same shape and dtype as w.
    - config: the updated dict.
    """
    config = _check("rmsprop", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("epsilon_placement", "outside")
    if config["epsilon_placement"] not in ("outside", "inside"):
        raise ValueError(
            "rmsprop: epsilon_placement must be 'outside' or 'inside', "
            f"got {config['epsilon_placement']!r}"
        )
    lr, rho, eps = (_scalar(config, k) for k in ("learning_rate", "decay_rate", "epsilon"))
    cache = rho * _state("rmsprop", config, "cache", w) + (1 - rho) * dw * dw
    base = _decay(w, config)
    next_w = base - lr * dw / _rms(cache, eps, config["epsilon_placement"], "rmsprop")
    config["cache"] = cache.astype(w.dtype, copy=False)
    return next_w.astype(w.dtype, copy=False), config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam (Kingma & Ba 2015): momentum on the gradient plus RMSProp scaling, bias-corrected.

    ``t += 1; m = beta1 m + (1 - beta1) dw; v = beta2 v + (1 - beta2) dw**2``;
    ``w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)`` with
    ``m_hat = m / (1 - beta1**t)``, ``v_hat = v / (1 - beta2**t)``.

    Inputs:
    - w, dw: arrays of the same shape (floating point).
    - config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
      epsilon_placement ('corrected' | 'hat'; 'hat' matches Keras, see the module docstring),
      weight_decay (0, decoupled as in AdamW / Keras);
      state m, v (zeros like w), t (0: the number of steps taken so far).

    Returns:
    - next_w: same shape and dtype as w.
    - config: the updated dict.
    """
    config = _check("adam", w, dw, config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("epsilon_placement", "corrected")
    config.setdefault("t", 0)
    placement = config["epsilon_placement"]
    if placement not in ("corrected", "hat"):
        raise ValueError(f"adam: epsilon_placement must be 'corrected' or 'hat', got {placement!r}")
    lr, b1, b2, eps = (_scalar(config, k) for k in ("learning_rate", "beta1", "beta2", "epsilon"))
    t = int(config["t"]) + 1
    m = b1 * _state("adam", config, "m", w) + (1 - b1) * dw
    v = b2 * _state("adam", config, "v", w) + (1 - b2) * (dw * dw)
    c1, c2 = 1.0 - b1**t, 1.0 - b2**t
    base = _decay(w, config)
    if placement == "corrected":
        step = lr * (m / c1) / (np.sqrt(v / c2) + eps)
    else:
        step = (lr * np.sqrt(c2) / c1) * m / (np.sqrt(v) + eps)
    next_w = base - step
    config["m"] = m.astype(w.dtype, copy=False)
    config["v"] = v.astype(w.dtype, copy=False)
    config["t"] = t
    return next_w.astype(w.dtype, copy=False), config


UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adam": adam,
}

# Settings that make one step match the Keras 3 optimiser with default arguments:
# SGD(), SGD(momentum=0.9), SGD(momentum=0.9, nesterov=True), RMSprop(), Adam().
KERAS_DEFAULTS: dict[str, Config] = {
    "sgd": {"learning_rate": 0.01},
    "sgd_momentum": {"learning_rate": 0.01, "momentum": 0.9},
    "nesterov": {"learning_rate": 0.01, "momentum": 0.9},
    "rmsprop": {
        "learning_rate": 1e-3,
        "decay_rate": 0.9,
        "epsilon": 1e-7,
        "epsilon_placement": "inside",
    },
    "adam": {
        "learning_rate": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
        "epsilon_placement": "hat",
    },
}


def get_update_rule(name: str | UpdateRule) -> UpdateRule:
    """Return the update rule called ``name`` (one of ``UPDATE_RULES``); ValueError otherwise.

    A callable is returned unchanged, so callers may pass their own rule.
    """
    if callable(name):
        return name
    try:
        return UPDATE_RULES[name]
    except KeyError:
        raise ValueError(
            f"get_update_rule: unknown update rule {name!r}; choose one of {sorted(UPDATE_RULES)}"
        ) from None
