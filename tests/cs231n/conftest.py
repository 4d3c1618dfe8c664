"""Helpers for the kit-compatibility tests."""

from __future__ import annotations

import numpy as np
import pytest


def _assert_grad_close(numeric, analytic, tol: float, max_kinks: int = 2,
                       atol: float = 1e-9) -> None:
    """Every element agrees to ``|num - ana| <= tol * (|num| + |ana|) + atol`` except at most
    ``max_kinks`` of them.

    ``atol`` covers entries that are nearly 0 (units behind a dead ReLU), whose relative
    error is rounding noise (about 1e-16 / h); it is far below the size of any real
    gradient entry in these tests.

    Networks with ReLUs (and max pooling) are piecewise linear: when an input of a ReLU sits
    within the finite-difference step h of 0, the centred difference straddles the kink and
    that one element is off, although the backward pass is right. A wrong backward pass
    makes many elements wrong, which this still catches.
    """
    numeric, analytic = np.asarray(numeric, np.float64), np.asarray(analytic, np.float64)
    assert numeric.shape == analytic.shape
    diff = np.abs(numeric - analytic)
    bad = int((diff > tol * (np.abs(numeric) + np.abs(analytic)) + atol).sum())
    assert bad <= max_kinks, (
        f"{bad} of {diff.size} elements differ by more than rtol={tol}, atol={atol} "
        f"(max abs difference {diff.max()})"
    )


@pytest.fixture
def grad_close():
    return _assert_grad_close
