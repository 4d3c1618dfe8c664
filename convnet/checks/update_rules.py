"""Update-rule checks: SGD, SGD with momentum, RMSProp and Adam.

The cs231n contract is ``next_w, config = rule(w, dw, config)``, every piece of state (the
velocity, the squared-gradient cache, Adam's moments and step count) kept in ``config``.
Each rule takes three steps, the config returned by one step passed into the next, against
the textbook formulas in :mod:`convnet.checks.references` (``FWD_TOL``): state that is not
carried over, or Adam without bias correction, differs from step 1 or 2 on. The rule runs
twice: with ``config=None`` (it must fill in the cs231n defaults) and with non-default
settings (it must read them instead of hard-coding the defaults).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convnet.checks.compare import rng
from convnet.checks.references import ref_adam, ref_rmsprop, ref_sgd, ref_sgd_momentum
from convnet.checks.registry import FWD_TOL, Getter, register
from convnet.gradcheck import rel_error

# rule -> (reference, cs231n defaults, non-default settings for the second check)
UPDATE_RULE_CASES: dict[str, tuple[Callable, dict[str, float], dict[str, float]]] = {
    "sgd": (ref_sgd, {"learning_rate": 1e-2}, {"learning_rate": 0.3}),
    "sgd_momentum": (ref_sgd_momentum, {"learning_rate": 1e-2, "momentum": 0.9},
                     {"learning_rate": 0.2, "momentum": 0.7}),
    "rmsprop": (ref_rmsprop, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
                {"learning_rate": 0.05, "decay_rate": 0.9, "epsilon": 1e-4}),
    "adam": (ref_adam, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
             {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-4}),
}


def _update_rule_case(get: Getter, name: str, config: dict[str, float] | None,
                      seed: int) -> tuple[float, str]:
    reference, defaults, _ = UPDATE_RULE_CASES[name]
    r = rng(seed)
    w = r.standard_normal((4, 5))
    ref_w, state = w.copy(), dict(defaults if config is None else config)
    cfg: Any = None if config is None else dict(config)
    worst = 0.0
    for step in range(1, 4):
        dw = r.standard_normal(w.shape)
        returned = get(name)(w, dw, cfg)
        if not (isinstance(returned, tuple) and len(returned) == 2):
            return math.inf, "must return a tuple (next_w, config)"
        w, cfg = np.asarray(returned[0]), returned[1]
        ref_w = reference(ref_w, dw, state)
        if w.shape != ref_w.shape:
            return math.inf, f"step {step}: next_w shape {w.shape}, expected {ref_w.shape}"
        if not isinstance(cfg, dict):
            return math.inf, f"step {step}: returned config is {type(cfg).__name__}, not a dict"
        err = rel_error(w, ref_w)
        if not err < FWD_TOL:
            return err, f"step {step} differs (state in config carried from step to step)"
        worst = max(worst, err)
    return worst, ""


for _rule, (_, _defaults, _custom) in UPDATE_RULE_CASES.items():
    register(_rule, "3 steps with config=None (defaults) vs formula", (_rule,), FWD_TOL)(
        lambda get, n=_rule: _update_rule_case(get, n, None, 400))
    _label = ", ".join(f"{k}={v:g}" for k, v in _custom.items())
    register(_rule, f"3 steps with {_label} vs formula", (_rule,), FWD_TOL)(
        lambda get, n=_rule, c=_custom: _update_rule_case(get, n, c, 401))
