"""Draws from NumPy's global random state, the one place the kit adapter uses it.

convnet itself takes explicit seeds and Generators. The kit's code, notebooks and expected
numbers instead rely on ``np.random.seed(...)`` steering every later draw (initial weights,
minibatches, dropout masks), so the adapter draws from the same global state.
"""

# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np


def randn(*shape: int) -> np.ndarray:
    """Standard normal float64 array of ``shape`` from the global state."""
    return np.random.randn(*shape)


def choice(n: int, size: int) -> np.ndarray:
    """``size`` indices in [0, n), with replacement, from the global state."""
    return np.random.choice(n, size)


def seed() -> int:
    """An int seed from the global state (for convnet functions that take one)."""
    return int(np.random.randint(2**31 - 1))
