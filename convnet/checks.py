"""The check registry behind ``convnet check``: every layer, forward and backward.

Each :class:`Check` tests one property of one layer (a row of the table): the forward
output against a small independent reference written here (einsum/sliding windows, or the
direct formula) on fixed seeded float64 inputs, or the backward pass against numerical
gradients (:func:`convnet.gradcheck.check_layer`), or an algebraic identity (col2im is the
adjoint of im2col, the transposed convolution the adjoint of the convolution). Fast backends
face the same references and shapes as the naive ones, including stride 2, padding and
overlapping 3x3 stride-2 pooling windows, so the classic bugs show up:

* max-pool backward that assigns instead of accumulating (overlapping windows);
* im2col that is wrong for stride > 1;
* col2im that overwrites instead of summing (not the adjoint of im2col);
* conv backward that ignores the padding.

An implementation is any object with the layer functions as attributes: ``convnet.layers``
(the default) or a student's module loaded from a path (:func:`load_student_module`). A check
whose functions the implementation does not define is MISSING; one whose function is a stub
(its body only raises ``NotImplementedError``, or it raises it when called) is
NOT_IMPLEMENTED. Neither fails the run. Any other exception is a FAIL with the exception in
the note, and so is a call that changes one of its array inputs in place (the harness
compares every array argument, and the arrays inside a ``cache`` tuple, before and after
each call: "relu_forward mutates its input x").

``extended`` checks exercise contract features beyond the cs231n assignment (dilation,
max-pool padding and Caffe ceil mode); they run on convnet's own layers by default and on a
student's module only when asked.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import functools
import importlib.util
import inspect
import math
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convnet.errors import ConvnetError
from convnet.gradcheck import check_layer, eval_numerical_gradient, rel_error
from convnet.layers._geometry import out_size

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
    - extended: a feature beyond the cs231n assignment (see the module docstring).
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


# --------------------------------------------------------------------------- references
# Deliberately written differently from the layers (einsum over windows, direct formulas)
# so that a shared mistake is unlikely.


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def ref_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int,
             dilation: int = 1) -> np.ndarray:
    """Reference convolution: x (N, C, H, W), w (F, C, HH, WW), b (F,) -> (N, F, H', W')."""
    F, C, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = dilation * (HH - 1) + 1, dilation * (WW - 1) + 1
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride, ::dilation, ::dilation]
    return np.einsum("nchwij,fcij->nfhw", win, w) + b[None, :, None, None]


def ref_conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int,
                       output_padding: int = 0) -> np.ndarray:
    """Reference transposed conv: scatter every input pixel times its filter, then crop.

    x (N, F, H, W), w (F, C, HH, WW), b (C,) -> (N, C, (H-1)*s - 2p + HH + op, ...).
    """
    N, F, H, W = x.shape
    _, C, HH, WW = w.shape
    full = np.zeros((N, C, (H - 1) * stride + HH + output_padding,
                     (W - 1) * stride + WW + output_padding))
    for i in range(H):
        for j in range(W):
            full[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW] += np.einsum(
                "nf,fcij->ncij", x[:, :, i, j], w)
    Ho, Wo = full.shape[2] - 2 * pad, full.shape[3] - 2 * pad
    return full[:, :, pad:pad + Ho, pad:pad + Wo] + b[None, :, None, None]


def _pool_windows(x: np.ndarray, ph: int, pw: int, s: int, p: int, ceil_mode: bool,
                  fill: float) -> tuple[np.ndarray, int, int]:
    N, C, H, W = x.shape
    Ho = out_size(H, ph, s, p, ceil_mode=ceil_mode)
    Wo = out_size(W, pw, s, p, ceil_mode=ceil_mode)
    extra_h = max(0, (Ho - 1) * s + ph - (H + 2 * p))
    extra_w = max(0, (Wo - 1) * s + pw - (W + 2 * p))
    xp = np.pad(x, ((0, 0), (0, 0), (p, p + extra_h), (p, p + extra_w)), constant_values=fill)
    win = sliding_window_view(xp, (ph, pw), axis=(2, 3))[:, :, ::s, ::s][:, :, :Ho, :Wo]
    return win, Ho, Wo


def ref_max_pool(x: np.ndarray, ph: int, pw: int, s: int, p: int = 0,
                 ceil_mode: bool = False) -> np.ndarray:
    """Reference max pooling (padding is -inf), x (N, C, H, W) -> (N, C, H', W')."""
    win, _, _ = _pool_windows(x, ph, pw, s, p, ceil_mode, -np.inf)
    return win.max(axis=(4, 5))


def ref_max_pool_backward(x: np.ndarray, dout: np.ndarray, ph: int, pw: int, s: int,
                          p: int = 0, ceil_mode: bool = False) -> np.ndarray:
    """Reference max-pool gradient: each window's dout to its FIRST maximum (row-major),
    summed over overlapping windows."""
    N, C, H, W = x.shape
    win, Ho, Wo = _pool_windows(x, ph, pw, s, p, ceil_mode, -np.inf)
    first = win.reshape(N, C, Ho, Wo, ph * pw).argmax(axis=-1)  # argmax: first maximum
    di, dj = np.divmod(first, pw)
    rows = np.arange(Ho)[None, None, :, None] * s + di - p
    cols = np.arange(Wo)[None, None, None, :] * s + dj - p
    nn = np.arange(N)[:, None, None, None]
    cc = np.arange(C)[None, :, None, None]
    dx = np.zeros_like(x)
    np.add.at(dx, (np.broadcast_to(nn, rows.shape), np.broadcast_to(cc, rows.shape),
                   rows, cols), dout)
    return dx


def ref_avg_pool(x: np.ndarray, ph: int, pw: int, s: int, p: int = 0) -> np.ndarray:
    """Reference average pooling with zero padding counted, as explicit loops."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = out_size(H, ph, s, p), out_size(W, pw, s, p)
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = xp[:, :, i * s:i * s + ph, j * s:j * s + pw].sum(axis=(2, 3))
    return out / (ph * pw)


# ------------------------------------------------------------------------------ helpers


def _grad_check(forward: Callable, backward: Callable, inputs: dict[str, np.ndarray],
                param: Any = None, seed: int = 0) -> tuple[float, str]:
    res = check_layer(forward, backward, inputs, param, seed=seed)
    notes = list(res.messages)
    worst = max(res.errors, key=res.errors.get) if res.errors else ""
    if res.errors and res.max_error > 0:
        notes.insert(0, f"worst: d{worst}")
    if res.nudged:
        notes.append(f"{res.nudged} inputs nudged off kinks")
    left = sum(res.kinks.values())
    if left:
        notes.append(f"{left} kink elements excluded")
    return res.max_error, "; ".join(notes)


def _forward_check(forward: Callable, args: tuple, expected: np.ndarray) -> tuple[float, str]:
    out = forward(*args)[0]
    out = np.asarray(out)
    if out.shape != expected.shape:
        return math.inf, f"output shape {out.shape}, expected {expected.shape}"
    if np.issubdtype(out.dtype, np.number) and not np.all(np.isfinite(out)):
        return math.inf, f"output has {int(np.sum(~np.isfinite(out)))} NaN/inf values"
    return rel_error(out, expected), ""


def _float32_check(forward: Callable, backward: Callable | None, args: tuple,
                   n_arrays: int, expected: np.ndarray) -> tuple[float, str]:
    """Run in float32: outputs (and gradients) must stay float32 and match float64."""
    args32 = tuple(a.astype(np.float32) if i < n_arrays else a for i, a in enumerate(args))
    out, cache = forward(*args32)
    out = np.asarray(out)
    if out.dtype != np.float32:
        return math.inf, f"float32 input gave {out.dtype} output"
    if backward is not None:
        grads = backward(np.ones_like(out), cache)
        grads = grads if isinstance(grads, (tuple, list)) else (grads,)
        bad = [str(np.asarray(g).dtype) for g in grads if np.asarray(g).dtype != np.float32]
        if bad:
            return math.inf, f"float32 input gave gradients of dtype {bad}"
    if out.shape != expected.shape:
        return math.inf, f"output shape {out.shape}, expected {expected.shape}"
    # Absolute error relative to the output scale: elementwise relative error is
    # meaningless for float32 values near 0.
    return float(np.abs(out - expected).max() / max(1e-12, np.abs(expected).max())), ""


# ------------------------------------------------------------------- convolution checks

CONV_BACKENDS = ("naive", "im2col", "numba")
# (x shape, w shape, stride, pad): odd non-square sizes, stride 2 with and without padding.
CONV_FWD_CASES = (
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
    ((2, 2, 9, 8), (3, 2, 5, 3), 3, 2),
    ((1, 3, 6, 6), (2, 3, 1, 1), 2, 0),
)


def _conv_inputs(xs: tuple, ws: tuple, seed: int) -> tuple[np.ndarray, ...]:
    r = _rng(seed)
    return r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])


def _register_conv(layer: str, fwd_name: str, bwd_name: str) -> None:
    for k, (xs, ws, s, p) in enumerate(CONV_FWD_CASES):
        def fwd_case(get: Getter, xs=xs, ws=ws, s=s, p=p, k=k) -> tuple[float, str]:
            x, w, b = _conv_inputs(xs, ws, 10 + k)
            return _forward_check(get(fwd_name), (x, w, b, {"stride": s, "pad": p}),
                                  ref_conv(x, w, b, s, p))

        register(layer, f"forward {ws[2]}x{ws[3]} s={s} p={p} vs reference", (fwd_name,),
                 FWD_TOL)(fwd_case)

    # s=1 p=0: overlapping windows without padding; s=2 p=1: stride and padding together.
    for s, p in ((1, 0), (2, 1)):
        def bwd_case(get: Getter, s=s, p=p) -> tuple[float, str]:
            x, w, b = _conv_inputs((2, 2, 5, 6), (3, 2, 3, 3), 20 + s)
            return _grad_check(get(fwd_name), get(bwd_name), {"x": x, "w": w, "b": b},
                               {"stride": s, "pad": p})

        register(layer, f"backward 3x3 s={s} p={p} vs numerical", (fwd_name, bwd_name),
                 BWD_TOL)(bwd_case)

    def dilation_case(get: Getter) -> tuple[float, str]:
        x, w, b = _conv_inputs((1, 2, 7, 6), (2, 2, 3, 3), 30)
        param = {"stride": 1, "pad": 2, "dilation": 2}
        err, note = _forward_check(get(fwd_name), (x, w, b, param), ref_conv(x, w, b, 1, 2, 2))
        gerr, gnote = _grad_check(get(fwd_name), get(bwd_name), {"x": x, "w": w, "b": b}, param)
        return max(err, gerr), "; ".join(n for n in (note, gnote) if n)

    register(layer, "forward+backward dilation=2", (fwd_name, bwd_name), BWD_TOL,
             extended=True)(dilation_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        x, w, b = _conv_inputs((2, 3, 7, 6), (4, 3, 3, 3), 40)
        return _float32_check(get(fwd_name), get(bwd_name), (x, w, b, {"stride": 2, "pad": 1}),
                              3, ref_conv(x, w, b, 2, 1))

    register(layer, "float32 in -> float32 out", (fwd_name, bwd_name), F32_TOL)(f32_case)

    if fwd_name != "conv_forward_naive":
        def vs_naive(get: Getter) -> tuple[float, str]:
            # A larger shape than the numerical check can afford, against convnet's naive
            # loops (analytic vs analytic, so a tight tolerance).
            from convnet.layers.conv_naive import conv_backward_naive, conv_forward_naive

            x, w, b = _conv_inputs((3, 3, 13, 11), (4, 3, 5, 5), 45)
            param = {"stride": 2, "pad": 2}
            out, cache = get(fwd_name)(x, w, b, dict(param))
            ref_out, ref_cache = conv_forward_naive(x, w, b, dict(param))
            dout = _rng(46).standard_normal(ref_out.shape)
            grads = get(bwd_name)(dout, cache)
            ref = conv_backward_naive(dout, ref_cache)
            if len(grads) != 3:
                return math.inf, f"backward returned {len(grads)} arrays, expected dx, dw, db"
            errs = [rel_error(out, ref_out)] + [rel_error(g, r) for g, r in zip(grads, ref,
                                                                                 strict=True)]
            worst = ("out", "dx", "dw", "db")[int(np.argmax(errs))]
            return max(errs), f"worst: {worst}"

        register(layer, "forward+backward 5x5 s=2 p=2 vs naive", (fwd_name, bwd_name),
                 FWD_TOL)(vs_naive)


for _b in CONV_BACKENDS:
    _register_conv(f"conv_{_b}", f"conv_forward_{_b}", f"conv_backward_{_b}")
_register_conv("conv (dispatch)", "conv_forward", "conv_backward")


def _register_winograd() -> None:
    """Winograd F(2x2, 3x3) accepts only 3x3 stride-1 convolutions: check those, with every
    padding and odd sizes (the output tile grid is cropped), and many channels (its use case)."""
    fwd_name, bwd_name = "conv_forward_winograd", "conv_backward_winograd"
    cases = (((2, 3, 7, 6), 0), ((2, 3, 7, 6), 1), ((1, 2, 5, 8), 2), ((2, 40, 6, 7), 1))
    for k, (xs, p) in enumerate(cases):
        ws = (4, xs[1], 3, 3)

        def fwd_case(get: Getter, xs=xs, ws=ws, p=p, k=k) -> tuple[float, str]:
            x, w, b = _conv_inputs(xs, ws, 60 + k)
            return _forward_check(get(fwd_name), (x, w, b, {"stride": 1, "pad": p}),
                                  ref_conv(x, w, b, 1, p))

        register("conv_winograd", f"forward 3x3 C={xs[1]} s=1 p={p} vs reference",
                 (fwd_name,), FWD_TOL)(fwd_case)

    for p in (0, 1):
        def bwd_case(get: Getter, p=p) -> tuple[float, str]:
            x, w, b = _conv_inputs((2, 2, 5, 6), (3, 2, 3, 3), 70 + p)
            return _grad_check(get(fwd_name), get(bwd_name), {"x": x, "w": w, "b": b},
                               {"stride": 1, "pad": p})

        register("conv_winograd", f"backward 3x3 s=1 p={p} vs numerical", (fwd_name, bwd_name),
                 BWD_TOL)(bwd_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        x, w, b = _conv_inputs((2, 3, 7, 6), (4, 3, 3, 3), 75)
        return _float32_check(get(fwd_name), get(bwd_name), (x, w, b, {"stride": 1, "pad": 1}),
                              3, ref_conv(x, w, b, 1, 1))

    register("conv_winograd", "float32 in -> float32 out", (fwd_name, bwd_name),
             F32_TOL)(f32_case)


_register_winograd()


def _register_im2col() -> None:
    # (x shape, HH, WW, stride, pad): overlapping windows with and without stride/padding.
    cases = (((2, 3, 6, 5), 3, 3, 1, 0), ((2, 2, 7, 6), 3, 3, 2, 1), ((1, 2, 8, 7), 2, 4, 3, 2))
    for k, (xs, HH, WW, s, p) in enumerate(cases):
        def adjoint(get: Getter, xs=xs, HH=HH, WW=WW, s=s, p=p, k=k) -> tuple[float, str]:
            r = _rng(50 + k)
            x = r.standard_normal(xs)
            cols = np.asarray(get("im2col")(x, HH, WW, s, p))
            y = r.standard_normal(cols.shape)
            back = np.asarray(get("col2im")(y, x.shape, HH, WW, s, p))
            if back.shape != x.shape:
                return math.inf, f"col2im returned shape {back.shape}, expected {x.shape}"
            lhs, rhs = float(np.sum(cols * y)), float(np.sum(x * back))
            return rel_error(lhs, rhs), f"<im2col(x),y>={lhs:.6g} <x,col2im(y)>={rhs:.6g}"

        register("im2col/col2im", f"adjoint {HH}x{WW} s={s} p={p}: <im2col(x),y>=<x,col2im(y)>",
                 ("im2col", "col2im"), ADJ_TOL)(adjoint)


_register_im2col()


def _register_conv_transpose() -> None:
    fwd, bwd = "conv_transpose_forward", "conv_transpose_backward"
    layer = "conv_transpose"
    cases = (((2, 3, 4, 5), (3, 2, 3, 3), 1, 0, 0), ((2, 3, 4, 3), (3, 2, 3, 3), 2, 1, 1),
             ((1, 2, 3, 3), (2, 3, 4, 2), 2, 0, 0))
    for k, (xs, ws, s, p, op) in enumerate(cases):
        def fwd_case(get: Getter, xs=xs, ws=ws, s=s, p=p, op=op, k=k) -> tuple[float, str]:
            r = _rng(60 + k)
            x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[1])
            param = {"stride": s, "pad": p, "output_padding": op}
            return _forward_check(get(fwd), (x, w, b, param), ref_conv_transpose(x, w, b, s, p, op))

        register(layer, f"forward {ws[2]}x{ws[3]} s={s} p={p} op={op} vs reference", (fwd,),
                 FWD_TOL)(fwd_case)

    def adjoint(get: Getter) -> tuple[float, str]:
        # convT(., w) is the adjoint of conv(., w): <conv(x), y> == <x, convT(y)> (zero bias).
        r = _rng(70)
        x, w = r.standard_normal((2, 2, 7, 7)), r.standard_normal((3, 2, 3, 3))
        cx = ref_conv(x, w, np.zeros(3), 2, 1)
        y = r.standard_normal(cx.shape)
        ty = np.asarray(get(fwd)(y, w, np.zeros(2), {"stride": 2, "pad": 1})[0])
        if ty.shape != x.shape:
            return math.inf, f"conv_transpose output shape {ty.shape}, expected {x.shape}"
        return rel_error(np.sum(cx * y), np.sum(x * ty)), ""

    register(layer, "adjoint of conv s=2 p=1: <conv(x),y>=<x,convT(y)>", (fwd,),
             ADJ_TOL)(adjoint)

    def bwd_case(get: Getter) -> tuple[float, str]:
        r = _rng(80)
        x, w, b = r.standard_normal((2, 3, 4, 3)), r.standard_normal((3, 2, 3, 3)), \
            r.standard_normal(2)
        return _grad_check(get(fwd), get(bwd), {"x": x, "w": w, "b": b},
                           {"stride": 2, "pad": 1, "output_padding": 1})

    register(layer, "backward s=2 p=1 op=1 vs numerical", (fwd, bwd))(bwd_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        r = _rng(90)
        x, w, b = r.standard_normal((2, 3, 4, 5)), r.standard_normal((3, 2, 3, 3)), \
            r.standard_normal(2)
        return _float32_check(get(fwd), get(bwd), (x, w, b, {"stride": 2, "pad": 1}), 3,
                              ref_conv_transpose(x, w, b, 2, 1))

    register(layer, "float32 in -> float32 out", (fwd, bwd), F32_TOL)(f32_case)


_register_conv_transpose()

# ---------------------------------------------------------------------- pooling checks

POOL_BACKENDS = ("naive", "im2col", "numba")
# (x shape, ph, pw, stride, pad, ceil_mode, extended)
POOL_FWD_CASES = (
    ((2, 3, 8, 8), 2, 2, 2, 0, False, False),
    ((2, 3, 9, 7), 3, 3, 2, 0, False, False),  # overlapping windows, odd sizes
    ((1, 2, 7, 10), 2, 3, 1, 0, False, False),  # non-square window, stride 1
    ((2, 2, 9, 9), 3, 3, 2, 1, False, True),  # padding
    ((2, 2, 8, 10), 3, 3, 2, 0, True, True),  # Caffe ceil mode (SqueezeNet)
)


def _pool_param(ph: int, pw: int, s: int, p: int, ceil_mode: bool) -> dict[str, Any]:
    param: dict[str, Any] = {"pool_height": ph, "pool_width": pw, "stride": s}
    if p or ceil_mode:
        # Only the extended cases pass these keys: a cs231n-style module need not know them.
        param.update(pad=p, ceil_mode=ceil_mode)
    return param


def _register_max_pool(layer: str, fwd_name: str, bwd_name: str) -> None:
    for k, (xs, ph, pw, s, p, ceil, ext) in enumerate(POOL_FWD_CASES):
        param = _pool_param(ph, pw, s, p, ceil)
        label = f"{ph}x{pw} s={s}" + (f" p={p}" if p else "") + (" ceil" if ceil else "")

        def fwd_case(get: Getter, xs=xs, param=param, ph=ph, pw=pw, s=s, p=p, ceil=ceil,
                     k=k) -> tuple[float, str]:
            x = _rng(100 + k).standard_normal(xs)
            return _forward_check(get(fwd_name), (x, dict(param)),
                                  ref_max_pool(x, ph, pw, s, p, ceil))

        register(layer, f"forward {label} vs reference", (fwd_name,), FWD_TOL,
                 extended=ext)(fwd_case)

        def bwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            # One image of two channels keeps the numerical gradient cheap.
            x = _rng(110 + k).standard_normal((1, 2) + xs[2:])
            return _grad_check(get(fwd_name), get(bwd_name), {"x": x}, dict(param), seed=k)

        register(layer, f"backward {label} vs numerical", (fwd_name, bwd_name), BWD_TOL,
                 extended=ext)(bwd_case)

    def ties_case(get: Getter) -> tuple[float, str]:
        # Small integers make many tied maxima, shared by overlapping windows; the contract
        # sends each window's gradient to its first maximum in row-major order.
        r = _rng(120)
        x = r.integers(0, 3, size=(2, 2, 9, 9)).astype(np.float64)
        param = _pool_param(3, 3, 2, 0, False)
        out, cache = get(fwd_name)(x, dict(param))
        dout = r.standard_normal(np.shape(out))
        dx = np.asarray(get(bwd_name)(dout, cache))
        expected = ref_max_pool_backward(x, dout, 3, 3, 2)
        if dx.shape != x.shape:
            return math.inf, f"dx shape {dx.shape}, expected {x.shape}"
        return rel_error(dx, expected), ""

    register(layer, "backward 3x3 s=2 tied maxima: first max gets it", (fwd_name, bwd_name),
             FWD_TOL)(ties_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        x = _rng(130).standard_normal((2, 3, 9, 7))
        param = _pool_param(3, 3, 2, 0, False)
        return _float32_check(get(fwd_name), get(bwd_name), (x, param), 1,
                              ref_max_pool(x, 3, 3, 2))

    register(layer, "float32 in -> float32 out", (fwd_name, bwd_name), F32_TOL)(f32_case)

    if fwd_name != "max_pool_forward_naive":
        def vs_naive(get: Getter) -> tuple[float, str]:
            from convnet.layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive

            x = _rng(135).standard_normal((3, 4, 15, 13))
            param = _pool_param(3, 3, 2, 0, False)
            out, cache = get(fwd_name)(x, dict(param))
            ref_out, ref_cache = max_pool_forward_naive(x, dict(param))
            dout = _rng(136).standard_normal(ref_out.shape)
            dx = get(bwd_name)(dout, cache)
            return max(rel_error(out, ref_out),
                       rel_error(dx, max_pool_backward_naive(dout, ref_cache))), ""

        register(layer, "forward+backward 3x3 s=2 vs naive", (fwd_name, bwd_name),
                 FWD_TOL)(vs_naive)


for _b in POOL_BACKENDS:
    _register_max_pool(f"max_pool_{_b}", f"max_pool_forward_{_b}", f"max_pool_backward_{_b}")
_register_max_pool("max_pool (dispatch)", "max_pool_forward", "max_pool_backward")


def _register_avg_pool() -> None:
    fwd, bwd = "avg_pool_forward", "avg_pool_backward"
    cases = (((2, 3, 8, 8), 2, 2, 2, 0), ((2, 2, 9, 7), 3, 3, 2, 1), ((1, 2, 6, 7), 2, 3, 1, 0))
    for k, (xs, ph, pw, s, p) in enumerate(cases):
        param = {"pool_height": ph, "pool_width": pw, "stride": s, "pad": p}

        def fwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            x = _rng(140 + k).standard_normal(xs)
            return _forward_check(get(fwd), (x, dict(param)),
                                  ref_avg_pool(x, param["pool_height"], param["pool_width"],
                                               param["stride"], param["pad"]))

        def bwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            x = _rng(150 + k).standard_normal(xs)
            return _grad_check(get(fwd), get(bwd), {"x": x}, dict(param))

        label = f"{ph}x{pw} s={s} p={p}"
        register("avg_pool", f"forward {label} vs reference", (fwd,), FWD_TOL)(fwd_case)
        register("avg_pool", f"backward {label} vs numerical", (fwd, bwd))(bwd_case)


_register_avg_pool()

# ---------------------------------------------------------- dense and element-wise layers


def _register_simple(layer: str, fwd: str, bwd: str, make_inputs: Callable[[], dict],
                     reference: Callable[..., np.ndarray], param: Any = None,
                     f32: bool = True) -> None:
    """Forward-vs-reference, backward-vs-numerical and float32 checks of one layer."""
    extra = () if param is None else (param,)

    def fwd_case(get: Getter) -> tuple[float, str]:
        ins = make_inputs()
        return _forward_check(get(fwd), (*ins.values(), *extra), reference(*ins.values()))

    def bwd_case(get: Getter) -> tuple[float, str]:
        return _grad_check(get(fwd), get(bwd), make_inputs(), param)

    register(layer, "forward vs reference", (fwd,), FWD_TOL)(fwd_case)
    register(layer, "backward vs numerical", (fwd, bwd))(bwd_case)
    if f32:
        def f32_case(get: Getter) -> tuple[float, str]:
            ins = make_inputs()
            return _float32_check(get(fwd), get(bwd), (*ins.values(), *extra), len(ins),
                                  reference(*ins.values()))

        register(layer, "float32 in -> float32 out", (fwd, bwd), F32_TOL)(f32_case)


def _inputs(seed: int, **shapes: tuple[int, ...]) -> Callable[[], dict[str, np.ndarray]]:
    def make() -> dict[str, np.ndarray]:
        r = _rng(seed)
        return {k: r.standard_normal(v) for k, v in shapes.items()}

    return make


_register_simple("affine", "affine_forward", "affine_backward",
                 _inputs(200, x=(4, 3, 2, 2), w=(12, 5), b=(5,)),
                 lambda x, w, b: x.reshape(len(x), -1) @ w + b)
_register_simple("flatten", "flatten_forward", "flatten_backward", _inputs(201, x=(3, 2, 3, 4)),
                 lambda x: x.reshape(3, 24))
_register_simple("reshape", "reshape_forward", "reshape_backward", _inputs(202, x=(3, 24)),
                 lambda x: x.reshape(3, 2, 3, 4), param=(2, 3, 4))
_register_simple("relu", "relu_forward", "relu_backward", _inputs(203, x=(4, 3, 5)),
                 lambda x: x * (x > 0))
_register_simple("leaky_relu", "leaky_relu_forward", "leaky_relu_backward",
                 _inputs(204, x=(4, 3, 5)), lambda x: np.where(x > 0, x, 0.1 * x), param=0.1)
_register_simple("sigmoid", "sigmoid_forward", "sigmoid_backward", _inputs(205, x=(4, 3, 5)),
                 lambda x: 0.5 * (1 + np.tanh(x / 2)))  # an identity, not the layer's formula
_register_simple("tanh", "tanh_forward", "tanh_backward", _inputs(206, x=(4, 3, 5)),
                 lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1))
_register_simple("global_avg_pool", "global_avg_pool_forward", "global_avg_pool_backward",
                 _inputs(207, x=(2, 3, 4, 5)), lambda x: x.sum(axis=(2, 3)) / 20)


def _concat_fwd(get: Getter) -> Callable:
    return lambda a, b, c: get("concat_forward")([a, b, c], 1)


def _concat_bwd(get: Getter) -> Callable:
    return lambda dout, cache: tuple(get("concat_backward")(dout, cache))


@register("concat", "forward vs reference", ("concat_forward",), FWD_TOL)
def _concat_forward_case(get: Getter) -> tuple[float, str]:
    ins = _inputs(208, a=(2, 1, 3, 3), b=(2, 4, 3, 3), c=(2, 2, 3, 3))()
    return _forward_check(_concat_fwd(get), tuple(ins.values()),
                          np.concatenate(list(ins.values()), axis=1))


@register("concat", "backward vs numerical", ("concat_forward", "concat_backward"))
def _concat_backward_case(get: Getter) -> tuple[float, str]:
    ins = _inputs(209, a=(2, 1, 3, 3), b=(2, 4, 3, 3), c=(2, 2, 3, 3))()
    return _grad_check(_concat_fwd(get), _concat_bwd(get), ins)


@register("dropout", "test mode is the identity", ("dropout_forward", "dropout_backward"),
          FWD_TOL)
def _dropout_test_case(get: Getter) -> tuple[float, str]:
    x = _rng(210).standard_normal((50, 40))
    out, cache = get("dropout_forward")(x, {"p": 0.3, "mode": "test"})
    dout = _rng(211).standard_normal(x.shape)
    dx = get("dropout_backward")(dout, cache)
    return max(rel_error(out, x), rel_error(dx, dout)), ""


@register("dropout", "train: drops ~p, scales kept by 1/(1-p)", ("dropout_forward",), 0.05)
def _dropout_train_case(get: Getter) -> tuple[float, str]:
    x = np.abs(_rng(212).standard_normal((200, 100))) + 0.5  # no zeros of its own
    p = 0.3
    out = np.asarray(get("dropout_forward")(x, {"p": p, "mode": "train", "seed": 1})[0])
    kept = out != 0
    scale_err = rel_error(out[kept], x[kept] / (1 - p))
    if scale_err > 1e-12:
        return scale_err, "kept units are not x / (1 - p) (inverted dropout)"
    frac = 1 - kept.mean()
    return abs(frac - p) / p, f"dropped fraction {frac:.3f}, p={p}"


@register("dropout", "backward (seeded mask) vs numerical",
          ("dropout_forward", "dropout_backward"))
def _dropout_backward_case(get: Getter) -> tuple[float, str]:
    x = _rng(213).standard_normal((6, 7))
    return _grad_check(get("dropout_forward"), get("dropout_backward"), {"x": x},
                       {"p": 0.4, "mode": "train", "seed": 5})


def _bn_reference(x: np.ndarray, g: np.ndarray, b: np.ndarray, axes: tuple[int, ...],
                  shape: tuple[int, ...], eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g.reshape(shape) + b.reshape(shape)


def _register_bn(layer: str, fwd: str, bwd: str, xs: tuple[int, ...], axes: tuple[int, ...],
                 shape: tuple[int, ...]) -> None:
    C = xs[1]

    def bn_inputs(seed: int) -> dict[str, np.ndarray]:
        r = _rng(seed)
        return {"x": 3 * r.standard_normal(xs) + 2, "gamma": r.standard_normal(C),
                "beta": r.standard_normal(C)}

    def fwd_train(get: Getter) -> tuple[float, str]:
        ins = bn_inputs(220)
        return _forward_check(get(fwd), (*ins.values(), {"mode": "train", "eps": 1e-5}),
                              _bn_reference(*ins.values(), axes, shape))

    def running(get: Getter) -> tuple[float, str]:
        # Two train steps update the running statistics with momentum; test mode then uses
        # them instead of the batch statistics.
        ins = [bn_inputs(221), bn_inputs(222)]
        param: dict[str, Any] = {"mode": "train", "eps": 1e-5, "momentum": 0.8}
        rm, rv = np.zeros(C), np.ones(C)
        for i in ins:
            get(fwd)(*i.values(), param)
            rm = 0.8 * rm + 0.2 * i["x"].mean(axis=axes)
            rv = 0.8 * rv + 0.2 * i["x"].var(axis=axes)
        err = max(rel_error(param.get("running_mean"), rm),
                  rel_error(param.get("running_var"), rv))
        if err > 1e-10:
            return err, "running_mean/var (biased batch variance, momentum 0.8)"
        param["mode"] = "test"
        x, g, b = ins[0].values()
        out = get(fwd)(x, g, b, param)[0]
        expected = (x - rm.reshape(shape)) / np.sqrt(rv.reshape(shape) + 1e-5) \
            * g.reshape(shape) + b.reshape(shape)
        return rel_error(out, expected), ""

    def backward(get: Getter, mode: str) -> tuple[float, str]:
        ins = bn_inputs(223)
        param: dict[str, Any] = {"mode": mode}
        if mode == "test":
            param.update(running_mean=_rng(224).standard_normal(C),
                         running_var=_rng(225).random(C) + 0.5)
        return _grad_check(get(fwd), get(bwd), ins, param)

    def f32(get: Getter) -> tuple[float, str]:
        ins = bn_inputs(226)
        return _float32_check(get(fwd), get(bwd), (*ins.values(), {"mode": "train"}), 3,
                              _bn_reference(*ins.values(), axes, shape))

    register(layer, "forward (train) vs reference", (fwd,), FWD_TOL)(fwd_train)
    register(layer, "running stats and test mode", (fwd,), FWD_TOL)(running)
    register(layer, "backward (train) vs numerical", (fwd, bwd))(
        lambda get: backward(get, "train"))
    register(layer, "backward (test) vs numerical", (fwd, bwd))(
        lambda get: backward(get, "test"))
    register(layer, "float32 in -> float32 out", (fwd, bwd), F32_TOL)(f32)


_register_bn("batchnorm", "batchnorm_forward", "batchnorm_backward", (8, 5), (0,), (1, 5))
_register_bn("spatial_batchnorm", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
             (3, 4, 3, 5), (0, 2, 3), (1, 4, 1, 1))


# ----------------------------------------------------------------------------- losses


def _loss_grad_check(loss_fn: Callable, pred: np.ndarray, *rest: Any) -> tuple[float, str]:
    _, analytic = loss_fn(pred, *rest)[:2]
    numeric = eval_numerical_gradient(lambda p: loss_fn(p, *rest)[0], pred.copy())
    return rel_error(analytic, numeric), ""


def _softmax_ref(s: np.ndarray, y: np.ndarray) -> float:
    logz = np.log(np.sum(np.exp(s - s.max(1, keepdims=True)), axis=1)) + s.max(1)
    return float(np.mean(logz - s[np.arange(len(y)), y]))


def _svm_ref(s: np.ndarray, y: np.ndarray) -> float:
    total = 0.0
    for i in range(len(y)):
        for j in range(s.shape[1]):
            if j != y[i]:
                total += max(0.0, s[i, j] - s[i, y[i]] + 1)
    return total / len(y)


def _scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    r = _rng(seed)
    # Unit-scale scores: with much larger ones some probabilities (and gradient entries)
    # fall below 1e-4, where the centred difference of an O(1) scalar loss cannot resolve
    # them to 1e-7 relative (rounding floor ~ eps * loss / h ~ 2e-11 absolute).
    return r.standard_normal((6, 5)), r.integers(0, 5, size=6)


for _name, _ref in (("softmax_loss", _softmax_ref), ("svm_loss", _svm_ref)):
    register(_name, "loss vs direct formula", (_name,), FWD_TOL)(
        lambda get, n=_name, f=_ref: (rel_error(get(n)(*_scores(300))[0], f(*_scores(300))), ""))
    register(_name, "dscores vs numerical", (_name,))(
        lambda get, n=_name: _loss_grad_check(get(n), *_scores(301)))


@register("softmax_loss", "large logits (1e4) stay finite", ("softmax_loss",), FWD_TOL)
def _softmax_stable_case(get: Getter) -> tuple[float, str]:
    s, y = _scores(302)
    big = s * 5e3
    loss, d = get("softmax_loss")(big, y)
    if not (np.isfinite(loss) and np.all(np.isfinite(d))):
        return math.inf, "overflow: loss or gradient not finite"
    return rel_error(loss, _softmax_ref(big, y)), ""


def _pair(seed: int, shape: tuple[int, ...] = (4, 6)) -> tuple[np.ndarray, np.ndarray]:
    r = _rng(seed)
    return r.standard_normal(shape), r.random(shape)


def _mse_ref(p: np.ndarray, t: np.ndarray, reduction: str) -> float:
    return {"mean": np.mean, "sum": np.sum,
            "batchmean": lambda a: np.sum(a) / len(a)}[reduction]((p - t) ** 2)


def _bce_ref(p: np.ndarray, t: np.ndarray, reduction: str) -> float:
    per = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return {"mean": np.mean(per), "sum": np.sum(per), "batchmean": np.sum(per) / len(p)}[reduction]


def _sig(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(z / 2))


for _red in ("mean", "sum", "batchmean"):
    register("mse_loss", f"{_red}: loss vs formula, dpred vs numerical", ("mse_loss",))(
        lambda get, r=_red: (max(
            rel_error(get("mse_loss")(*_pair(310), r)[0], _mse_ref(*_pair(310), r)),
            _loss_grad_check(lambda p, t: get("mse_loss")(p, t, r), *_pair(311))[0]), ""))

    def _bce_case(get: Getter, r: str = _red) -> tuple[float, str]:
        z, t = _pair(320)
        p = _sig(z)
        err = rel_error(get("bce_loss")(p, t, r)[0], _bce_ref(p, t, r))
        gerr = _loss_grad_check(lambda q, tt: get("bce_loss")(q, tt, r), p, t)[0]
        return max(err, gerr), ""

    register("bce_loss", f"{_red}: loss vs formula, dprobs vs numerical", ("bce_loss",))(_bce_case)

    def _bcel_case(get: Getter, r: str = _red) -> tuple[float, str]:
        z, t = _pair(330)
        fn = get("bce_with_logits_loss")
        err = rel_error(fn(z, t, r)[0], _bce_ref(_sig(z), t, r))
        gerr = _loss_grad_check(lambda q, tt: fn(q, tt, r), z, t)[0]
        return max(err, gerr), ""

    register("bce_with_logits_loss", f"{_red}: loss vs formula, dlogits vs numerical",
             ("bce_with_logits_loss",))(_bcel_case)


@register("bce_with_logits_loss", "logits +-1000 stay finite and exact",
          ("bce_with_logits_loss",), FWD_TOL)
def _bcel_stable_case(get: Getter) -> tuple[float, str]:
    z = np.array([[1000.0, -1000.0, 800.0, -800.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0]])
    loss, d = get("bce_with_logits_loss")(z, t, "sum")
    if not (np.isfinite(loss) and np.all(np.isfinite(d))):
        return math.inf, "overflow: loss or gradient not finite"
    # Exact: log(1 + e^1000) = 1000 (+ e^-1000), twice; the other two terms are ~0.
    return max(rel_error(loss, 2000.0), rel_error(d, [[1.0, -1.0, 0.0, 0.0]])), ""


@register("bce_loss", "probabilities 0 and 1 stay finite", ("bce_loss",), FWD_TOL)
def _bce_stable_case(get: Getter) -> tuple[float, str]:
    p = np.array([[0.0, 1.0, 0.0, 1.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0]])
    loss, d = get("bce_loss")(p, t, "sum")
    ok = np.isfinite(loss) and np.all(np.isfinite(d)) and loss > 0
    return (0.0, "") if ok else (math.inf, f"loss {loss}, gradient {np.asarray(d).ravel()}")


def _kl_ref(mu: np.ndarray, lv: np.ndarray, reduction: str) -> float:
    per = -0.5 * (1 + lv - mu ** 2 - np.exp(lv))
    return {"mean": np.mean(per), "sum": np.sum(per), "batchmean": np.sum(per) / len(mu)}[reduction]


for _red in ("batchmean", "mean", "sum"):
    def _kl_case(get: Getter, r: str = _red) -> tuple[float, str]:
        rr = _rng(340)
        mu, lv = rr.standard_normal((4, 3)), 0.5 * rr.standard_normal((4, 3))
        fn = get("gaussian_kl")
        kl, dmu, dlv = fn(mu, lv, r)
        err = rel_error(kl, _kl_ref(mu, lv, r))
        nmu = eval_numerical_gradient(lambda m: fn(m, lv, r)[0], mu.copy())
        nlv = eval_numerical_gradient(lambda v: fn(mu, v, r)[0], lv.copy())
        return max(err, rel_error(dmu, nmu), rel_error(dlv, nlv)), ""

    register("gaussian_kl", f"{_red}: kl vs formula, dmu/dlogvar vs numerical",
             ("gaussian_kl",))(_kl_case)


@register("softmax", "vs direct formula, rows sum to 1", ("softmax",), FWD_TOL)
def _softmax_case(get: Getter) -> tuple[float, str]:
    s = _scores(303)[0]
    e = np.exp(s)
    return rel_error(get("softmax")(s), e / e.sum(axis=1, keepdims=True)), ""


# ------------------------------------------------------------------------ update rules
# The cs231n contract ``next_w, config = rule(w, dw, config)``, state kept in config. Each
# rule takes three steps (the config returned by one step goes into the next, so state that
# is not carried over shows up) against the textbook formulas written out below.


def _ref_sgd(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    return w - st["learning_rate"] * dw


def _ref_sgd_momentum(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    st["v"] = st["momentum"] * st.get("v", 0.0) - st["learning_rate"] * dw
    return w + st["v"]


def _ref_rmsprop(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    rho = st["decay_rate"]
    st["c"] = rho * st.get("c", 0.0) + (1 - rho) * dw ** 2
    return w - st["learning_rate"] * dw / (np.sqrt(st["c"]) + st["epsilon"])


def _ref_adam(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    # Kingma & Ba (2015), Algorithm 1, epsilon added to the bias-corrected sqrt(v).
    b1, b2 = st["beta1"], st["beta2"]
    st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * dw
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * dw ** 2
    m_hat, v_hat = st["m"] / (1 - b1 ** st["t"]), st["v"] / (1 - b2 ** st["t"])
    return w - st["learning_rate"] * m_hat / (np.sqrt(v_hat) + st["epsilon"])


# rule -> (reference, cs231n defaults, non-default settings for the second check)
UPDATE_RULE_CASES: dict[str, tuple[Callable, dict[str, float], dict[str, float]]] = {
    "sgd": (_ref_sgd, {"learning_rate": 1e-2}, {"learning_rate": 0.3}),
    "sgd_momentum": (_ref_sgd_momentum, {"learning_rate": 1e-2, "momentum": 0.9},
                     {"learning_rate": 0.2, "momentum": 0.7}),
    "rmsprop": (_ref_rmsprop, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
                {"learning_rate": 0.05, "decay_rate": 0.9, "epsilon": 1e-4}),
    "adam": (_ref_adam, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
             {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-4}),
}


def _update_rule_case(get: Getter, name: str, config: dict[str, float] | None,
                      seed: int) -> tuple[float, str]:
    reference, defaults, _ = UPDATE_RULE_CASES[name]
    r = _rng(seed)
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


# ----------------------------------------------------------------------------- running

ALL_FUNCTION_NAMES: tuple[str, ...] = tuple(sorted({n for c in REGISTRY for n in c.needs}))


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
