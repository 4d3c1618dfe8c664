"""Running a student's code safely enough to grade it: loading, stubs, mutated inputs.

* :func:`load_student_module` imports a file by path (not by package name), with the
  file's folder importable for the duration, and turns any import failure into one line.
* A function whose body only raises ``NotImplementedError`` (an untouched template) is a
  *stub* (:func:`stub_functions`, from the source, without calling it); the checks needing
  it are NOT_IMPLEMENTED rather than FAIL.
* :func:`guard_inputs` wraps every function handed to a check: a call that changes one of
  its array arguments in place, or an array inside a ``cache`` tuple, raises
  :class:`InputMutatedError` ("relu_forward mutates its input x"). Such a layer corrupts its
  caller's data (the next layer, the numerical gradient, the cache) and can even pass a
  numerical check by accident, so it is a FAIL however good the numbers look.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from convnet.checks.families import ALL_FUNCTION_NAMES
from convnet.errors import ConvnetError


class NothingToCheckError(ConvnetError):
    """A student's module defines none of the layer functions convnet checks."""


def load_student_module(path: str | Path) -> ModuleType:
    """Import a Python file by path (not by package name), e.g. a student's layers.py.

    Raises FileNotFoundError when the file does not exist and ConvnetError (one line) when
    it cannot be imported.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--impl: no such file: {path}")
    name = f"convnet_student_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConvnetError(f"--impl: cannot import {path} (not a Python file?)")
    module = importlib.util.module_from_spec(spec)
    # Registered like a normal import so dataclasses/typing inside the module resolve it.
    sys.modules[name] = module
    # Importable helpers next to the student's file (a common layout) should resolve.
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConvnetError(f"--impl: importing {path} failed: {type(exc).__name__}: {exc}") \
            from exc
    finally:
        sys.path.pop(0)
    return module


def defined_functions(module: Any) -> list[str]:
    """The checked layer function names that ``module`` defines (callable attributes)."""
    return [n for n in ALL_FUNCTION_NAMES if callable(getattr(module, n, None))]


def _is_stub(fn: Callable) -> bool:
    """True when fn's body (past its docstring) is only ``raise NotImplementedError(...)``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False  # no source (builtin, C, lambda in odd places): judge it by running it
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = [st for st in node.body
            if not isinstance(st, ast.Pass)
            and not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def stub_functions(impl: Any, names: Iterable[str] | None = None) -> set[str]:
    """The functions of ``impl`` (among ``names``, default every checked name) that are
    untouched stubs: their body only raises ``NotImplementedError``."""
    names = ALL_FUNCTION_NAMES if names is None else names
    return {n for n in names if callable(getattr(impl, n, None)) and _is_stub(getattr(impl, n))}


class InputMutatedError(Exception):
    """Raised by the harness after a call that changed one of its array arguments."""


def _array_arguments(args: tuple, params: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(label, array) for every ndarray argument, and every ndarray inside a tuple/list
    argument (a cache); dicts are left out: params and configs carry state on purpose."""
    for i, a in enumerate(args):
        label = params[i] if i < len(params) else f"argument {i + 1}"
        if isinstance(a, np.ndarray):
            yield label, a
        elif isinstance(a, (tuple, list)):
            for j, e in enumerate(a):
                if isinstance(e, np.ndarray):
                    yield f"{label}[{j}]", e


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if np.issubdtype(a.dtype, np.inexact):
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def guard_inputs(name: str, fn: Callable) -> Callable:
    """Wrap ``fn`` so that a call which changes an array argument in place raises
    :class:`InputMutatedError` ("NAME mutates its input x"). A layer that writes into its
    input corrupts the caller's data: the next layer, the numerical gradient, the cache."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    try:
        params = [n for n, p in inspect.signature(fn).parameters.items() if p.kind in positional]
    except (TypeError, ValueError):
        params = []

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        before = [(label, a, a.copy()) for label, a in _array_arguments(args, params)]
        out = fn(*args, **kwargs)
        for label, a, copy in before:
            if not _same(a, copy):
                raise InputMutatedError(f"{name} mutates its input {label}")
        return out

    return call
