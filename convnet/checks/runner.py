"""Choosing and running checks: the filter, one check with its outcome, the whole run.

:func:`run_check` turns whatever happens into a :class:`~convnet.checks.registry.CheckResult`:

* a needed function the implementation does not define: MISSING (not run);
* a needed function that is a stub, or a ``NotImplementedError`` raised while running:
  NOT_IMPLEMENTED, naming the innermost function of the implementation that raised it;
* an input changed in place (:func:`~convnet.checks.student.guard_inputs`): FAIL;
* any other exception: FAIL, with the function that raised it and the first line of the
  message (the implementation under test may raise anything);
* an error of NaN: FAIL (NaN compares False with the tolerance), noted as such;
* otherwise PASS when the error is strictly below the check's tolerance.

Neither MISSING nor NOT_IMPLEMENTED fails a run. Floating-point warnings are silenced while a
check runs: overflow in a student's code shows as a wrong or non-finite result instead.

``extended`` checks (dilation, max-pool padding and ceil mode, (C,)-shaped group-norm
parameters) run on convnet's own layers by default and on a student's module only when
asked: a cs231n-style module need not know those keys.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from convnet.checks.registry import (
    FAIL,
    MISSING,
    NOT_IMPLEMENTED,
    PASS,
    REGISTRY,
    Check,
    CheckResult,
)
from convnet.checks.student import InputMutatedError, guard_inputs, stub_functions
from convnet.checks.update_rules import UPDATE_RULE_CASES


def select_checks(only: str | None = None, extended: bool = True,
                  functions: Iterable[str] | None = None) -> list[Check]:
    """Checks matching ``only``: comma-separated patterns, each a substring of
    ``"layer: check"`` or a glob on ``layer`` or on ``"layer: check"``. With ``functions``,
    only the checks that call nothing else (an exercise's functions)."""
    chosen = [c for c in REGISTRY if extended or not c.extended]
    if functions is not None:
        allowed = set(functions)
        chosen = [c for c in chosen if set(c.needs) <= allowed]
    if only:
        # The whole pattern too: check names may themselves contain commas.
        pats = [only.strip()] + [p.strip() for p in only.split(",") if p.strip()]

        def match(c: Check) -> bool:
            full = f"{c.layer}: {c.name}"
            return any(p in full or fnmatch.fnmatch(c.layer, p) or fnmatch.fnmatch(full, p)
                       for p in pats)

        chosen = [c for c in chosen if match(c)]
    return chosen


def _raised_in(exc: BaseException, names: Iterable[str]) -> str:
    """The innermost function among ``names`` in the exception's traceback, or ''."""
    names = set(names)
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in names:
            found = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return found


def run_check(check: Check, impl: Any, stubs: Iterable[str] = ()) -> CheckResult:
    """Run one check on ``impl`` (a module or any object with the functions). Functions in
    ``stubs`` are known to be unimplemented: a check that needs one is not run."""
    needs = check.needs

    def result(error: float | None, status: str, note: str) -> CheckResult:
        return CheckResult(check.layer, check.name, error, check.tol, status, note, needs)

    missing = [n for n in needs if not callable(getattr(impl, n, None))]
    if missing:
        return result(None, MISSING, "not defined: " + ", ".join(missing))
    stubbed = [n for n in needs if n in set(stubs)]
    if stubbed:
        return result(None, NOT_IMPLEMENTED, "not implemented: " + ", ".join(stubbed))

    def get(name: str) -> Callable:
        return guard_inputs(name, getattr(impl, name))

    try:
        with np.errstate(all="ignore"):
            error, note = check.fn(get)
    except NotImplementedError as exc:
        where = _raised_in(exc, needs) or "/".join(needs)
        return result(None, NOT_IMPLEMENTED,
                      f"not implemented: {where}" + (f" ({exc})" if str(exc) else ""))
    except InputMutatedError as exc:
        return result(math.inf, FAIL, str(exc))
    except Exception as exc:  # the implementation under test may raise anything
        msg = str(exc).splitlines()[0] if str(exc) else ""
        where = _raised_in(exc, needs)
        return result(math.inf, FAIL,
                      (f"{where} " if where else "") + f"raised {type(exc).__name__}: {msg}"[:200])
    error = float(error)
    if math.isnan(error):
        note = "; ".join(n for n in ("NaN in the result (output or gradient)", note) if n)
    status = PASS if error < check.tol else FAIL  # NaN compares False: a FAIL
    return result(error, status, note)


def default_impl() -> Any:
    """convnet's own functions under their checked names: the layers and the update rules."""
    import types

    import convnet.layers as layers
    import convnet.optim as optim

    names = {n: getattr(layers, n) for n in layers.__all__}
    names.update({n: getattr(optim, n) for n in UPDATE_RULE_CASES})
    return types.SimpleNamespace(**names)


def run_checks(impl: Any = None, only: str | None = None, extended: bool | None = None,
               progress: Callable[[CheckResult], None] | None = None,
               functions: Iterable[str] | None = None,
               starting: Callable[[Check], None] | None = None) -> list[CheckResult]:
    """Run every selected check.

    Inputs:
    - impl: module (or object) with the layer functions; None for convnet's own
      (:func:`default_impl`).
    - only: filter as in :func:`select_checks`.
    - extended: include the extended checks (default: True for convnet's own layers,
      False for another implementation).
    - progress: called with each result as it is produced.
    - functions: only the checks calling nothing but these (an exercise's functions).
    - starting: called with each check just before it runs.

    Returns the list of :class:`CheckResult`, in registry order.
    """
    stubs: set[str] = set()
    if impl is None:
        impl = default_impl()
        if extended is None:
            extended = True
    else:
        stubs = stub_functions(impl)
    checks = select_checks(only, extended=bool(extended), functions=functions)
    results = []
    with _single_numba_thread():
        for c in checks:
            if starting is not None:
                starting(c)
            res = run_check(c, impl, stubs)
            results.append(res)
            if progress is not None:
                progress(res)
    return results


@contextlib.contextmanager
def _single_numba_thread() -> Iterator[None]:
    """Run Numba's parallel kernels on one thread while checking.

    The check inputs are tiny and a numerical gradient calls forward hundreds of times:
    waking a thread pool costs ~1000x the work itself (30 ms vs 20 us per call on a busy
    machine), while one thread computes the same numbers.
    """
    try:
        import numba

        previous = numba.get_num_threads()
        numba.set_num_threads(1)
    except Exception:  # numba missing or its threading layer unavailable: nothing to do
        yield
        return
    try:
        yield
    finally:
        numba.set_num_threads(previous)
