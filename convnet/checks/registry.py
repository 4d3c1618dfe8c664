"""What a check is, what it can report, and the list every family appends its checks to.

A :class:`Check` is one row of the ``convnet check`` table: a property of one layer, its
tolerance, and a function ``fn(get) -> (error, note)`` that measures it, where ``get(name)``
hands out the implementation's function of that name. :func:`register` appends a check to
:data:`REGISTRY`; the families (:mod:`convnet.checks.families`) register theirs in a fixed
order, which is the order of the rows.

Tolerances are on a maximum relative error, strictly below passes:

* ``FWD_TOL`` 1e-8: a float64 forward pass against its reference computes the same numbers
  in another order, so only rounding separates them.
* ``BWD_TOL`` 1e-7: analytic against centred-difference gradients (h = 1e-5) in float64;
  the truncation error is O(h^2) and the rounding error about eps / h.
* ``ADJ_TOL`` 1e-10: both sides of an adjoint identity are inner products of the same
  numbers summed in different orders.
* ``F32_TOL`` 1e-4: a float32 run against the float64 reference, as an absolute error over
  the output's scale (a few float32 ulps, accumulated over a sum).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

FWD_TOL = 1e-8  # float64 forward against the reference: only summation order differs
BWD_TOL = 1e-7  # float64 analytic vs centred-difference gradients (h = 1e-5)
ADJ_TOL = 1e-10  # two inner products of the same numbers, summed in different orders
F32_TOL = 1e-4  # float32 run against the float64 reference (a few ulps of float32, summed)

PASS, FAIL, MISSING = "PASS", "FAIL", "MISSING"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
STATUSES = (PASS, FAIL, NOT_IMPLEMENTED, MISSING)

Getter = Callable[[str], Callable]


@dataclass(frozen=True)
class Check:
    """One row of the table.

    - layer: layer (function family) name, e.g. ``conv_im2col``.
    - name: what is checked, e.g. ``forward s=2 p=1 vs reference``.
    - needs: functions of the implementation under test, all required.
    - tol: tolerance on the returned max relative error (strictly below passes).
    - fn: ``fn(get) -> (error, note)``; ``get(name)`` returns the implementation's function.
    - extended: a feature beyond the cs231n assignment (dilation, max-pool padding, Caffe
      ceil mode, (C,)-shaped group-norm parameters); run on a student's module only when
      asked.
    """

    layer: str
    name: str
    needs: tuple[str, ...]
    tol: float
    fn: Callable[[Getter], tuple[float, str]]
    extended: bool = False


@dataclass
class CheckResult:
    """The outcome of one :class:`Check`. error is None when the check did not run."""

    layer: str
    check: str
    error: float | None
    tol: float
    status: str
    note: str = ""
    functions: tuple[str, ...] = ()  # the implementation's functions the check calls

    def to_json(self) -> dict[str, Any]:
        err = self.error
        if err is not None and not math.isfinite(err):
            err = None  # JSON has no inf/NaN; the note says what happened
        return {"layer": self.layer, "check": self.check, "error": err, "tol": self.tol,
                "status": self.status, "note": self.note, "functions": list(self.functions)}


REGISTRY: list[Check] = []


def register(layer: str, name: str, needs: Iterable[str], tol: float = BWD_TOL,
             extended: bool = False) -> Callable:
    """Decorator adding ``fn(get) -> (error, note)`` to :data:`REGISTRY`."""

    def deco(fn: Callable[[Getter], tuple[float, str]]) -> Callable:
        REGISTRY.append(Check(layer, name, tuple(needs), tol, fn, extended))
        return fn

    return deco
