"""First-order update rules for gradient descent.

Every rule has the same contract: ``next_w, config = rule(w, dw, config)``.

- w: the current parameter, an array of any shape.
- dw: the gradient of the loss with respect to w, same shape.
- config: a dict of hyperparameters and of the rule's own state (velocity, running
  averages, step count), or None on the first call. Fill in the missing hyperparameters
  with ``config.setdefault(name, default)`` and keep the state in the dict: the caller
  passes the returned config back on the next step.

Return a NEW array for next_w (never update w in place: the checker compares the inputs
before and after each call) and the config dict.

Check your work at any time with

    convnet check --impl update_rules.py
"""

import numpy as np  # noqa: F401  (you will need it)

__convnet_exercise__ = "update_rules"


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: next_w = w - learning_rate * dw.

    Inputs:
    - w: parameter, array of any shape.
    - dw: gradient, same shape as w.
    - config: dict or None, with
      - 'learning_rate': step size (default 1e-2).

    Returns a tuple of:
    - next_w: the updated parameter, a new array of w's shape.
    - config: the config dict.
    """
    raise NotImplementedError("sgd: setdefault the learning rate; return w - lr * dw, config")


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

    v = momentum * v - learning_rate * dw;  next_w = w + v

    Inputs:
    - w: parameter, array of any shape.
    - dw: gradient, same shape as w.
    - config: dict or None, with
      - 'learning_rate': step size (default 1e-2).
      - 'momentum': in [0, 1), fraction of the velocity kept each step (default 0.9).
      - 'velocity': state, array of w's shape (zeros when absent).

    Returns a tuple of:
    - next_w: the updated parameter, a new array of w's shape.
    - config: the config dict, with the new 'velocity'.
    """
    raise NotImplementedError(
        "sgd_momentum: v = momentum * v - lr * dw (v starts at zeros); next_w = w + v; "
        "store v in config['velocity']")


def rmsprop(w, dw, config=None):
    """RMSProp (Tieleman & Hinton 2012): a per-element step size from a running mean of
    squared gradients.

    cache = decay_rate * cache + (1 - decay_rate) * dw**2
    next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Inputs:
    - w: parameter, array of any shape.
    - dw: gradient, same shape as w.
    - config: dict or None, with
      - 'learning_rate': step size (default 1e-2).
      - 'decay_rate': in [0, 1), decay of the squared-gradient average (default 0.99).
      - 'epsilon': small constant against division by zero (default 1e-8).
      - 'cache': state, array of w's shape (zeros when absent).

    Returns a tuple of:
    - next_w: the updated parameter, a new array of w's shape.
    - config: the config dict, with the new 'cache'.
    """
    raise NotImplementedError(
        "rmsprop: update config['cache'] with dw**2, then step by lr * dw / "
        "(sqrt(cache) + eps)")


def adam(w, dw, config=None):
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1).

    t = t + 1
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t);  v_hat = v / (1 - beta2**t)
    next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    Inputs:
    - w: parameter, array of any shape.
    - dw: gradient, same shape as w.
    - config: dict or None, with
      - 'learning_rate': step size (default 1e-3).
      - 'beta1': decay of the first moment (default 0.9).
      - 'beta2': decay of the second moment (default 0.999).
      - 'epsilon': small constant against division by zero (default 1e-8).
      - 'm', 'v': state, arrays of w's shape (zeros when absent).
      - 't': state, the number of steps taken so far (0 when absent).

    Returns a tuple of:
    - next_w: the updated parameter, a new array of w's shape.
    - config: the config dict, with the new 'm', 'v' and 't'.
    """
    raise NotImplementedError(
        "adam: increment t first, update m and v, bias-correct both, then step")
