"""Pooling checks: every max-pool backend, the dispatcher, and average pooling.

Max pooling (``naive``, ``im2col``, ``numba`` and ``max_pool_forward``) is checked on:

* 2x2 stride 2 (no overlap), 3x3 stride 2 on odd sizes (overlapping windows) and a
  non-square 2x3 window at stride 1: forward against
  :func:`~convnet.checks.references.ref_max_pool` (``FWD_TOL``) and backward against
  numerical gradients (``BWD_TOL``) on one image of two channels, which keeps the numerical
  gradient cheap;
* tied maxima: small integers make many ties shared by overlapping windows. The contract
  sends each window's gradient to its *first* maximum in row-major order and sums over
  windows; :func:`~convnet.checks.references.ref_max_pool_backward` does exactly that, and a
  backward that assigns instead of accumulating fails here and in the 3x3 s=2 numerical
  check, while passing 2x2 s=2 (no overlap, so nothing to accumulate);
* float32 in, float32 out (``F32_TOL``), and for the fast backends a larger case against
  convnet's naive loops (analytic against analytic, ``FWD_TOL``);
* extended: padding (padded with -inf, never the maximum) and Caffe's ceil mode (the last,
  partial window kept, as SqueezeNet needs). A cs231n-style ``pool_param`` has neither key,
  so only these cases pass them.

The numerical gradient of a max is undefined at a tie; the gradient checker nudges tied
inputs apart and reports it in the note.

The fused ReLU + max pooling layer (``relu_max_pool_forward``) gets the same cases, with
``relu`` of the reference as the expected forward and, for ties, the chain rule through the
reference backward.

Average pooling counts the zero padding in the mean (the window size is the divisor), as
``ref_avg_pool`` does with explicit loops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convnet.checks.compare import float32_check, forward_check, grad_check, rng
from convnet.checks.references import ref_avg_pool, ref_max_pool, ref_max_pool_backward
from convnet.checks.registry import BWD_TOL, F32_TOL, FWD_TOL, Getter, register
from convnet.gradcheck import rel_error

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
            x = rng(100 + k).standard_normal(xs)
            return forward_check(get(fwd_name), (x, dict(param)),
                                 ref_max_pool(x, ph, pw, s, p, ceil))

        register(layer, f"forward {label} vs reference", (fwd_name,), FWD_TOL,
                 extended=ext)(fwd_case)

        def bwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            # One image of two channels keeps the numerical gradient cheap.
            x = rng(110 + k).standard_normal((1, 2) + xs[2:])
            return grad_check(get(fwd_name), get(bwd_name), {"x": x}, dict(param), seed=k)

        register(layer, f"backward {label} vs numerical", (fwd_name, bwd_name), BWD_TOL,
                 extended=ext)(bwd_case)

    def ties_case(get: Getter) -> tuple[float, str]:
        # Small integers make many tied maxima, shared by overlapping windows; the contract
        # sends each window's gradient to its first maximum in row-major order.
        r = rng(120)
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
        x = rng(130).standard_normal((2, 3, 9, 7))
        param = _pool_param(3, 3, 2, 0, False)
        return float32_check(get(fwd_name), get(bwd_name), (x, param), 1,
                             ref_max_pool(x, 3, 3, 2))

    register(layer, "float32 in -> float32 out", (fwd_name, bwd_name), F32_TOL)(f32_case)

    if fwd_name != "max_pool_forward_naive":
        _register_max_pool_vs_naive(layer, fwd_name, bwd_name)


def _register_max_pool_vs_naive(layer: str, fwd_name: str, bwd_name: str) -> None:
    def vs_naive(get: Getter) -> tuple[float, str]:
        from convnet.layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive

        x = rng(135).standard_normal((3, 4, 15, 13))
        param = _pool_param(3, 3, 2, 0, False)
        out, cache = get(fwd_name)(x, dict(param))
        ref_out, ref_cache = max_pool_forward_naive(x, dict(param))
        dout = rng(136).standard_normal(ref_out.shape)
        dx = get(bwd_name)(dout, cache)
        return max(rel_error(out, ref_out),
                   rel_error(dx, max_pool_backward_naive(dout, ref_cache))), ""

    register(layer, "forward+backward 3x3 s=2 vs naive", (fwd_name, bwd_name),
             FWD_TOL)(vs_naive)


def _register_avg_pool() -> None:
    fwd, bwd = "avg_pool_forward", "avg_pool_backward"
    cases = (((2, 3, 8, 8), 2, 2, 2, 0), ((2, 2, 9, 7), 3, 3, 2, 1), ((1, 2, 6, 7), 2, 3, 1, 0))
    for k, (xs, ph, pw, s, p) in enumerate(cases):
        param = {"pool_height": ph, "pool_width": pw, "stride": s, "pad": p}

        def fwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            x = rng(140 + k).standard_normal(xs)
            return forward_check(get(fwd), (x, dict(param)),
                                 ref_avg_pool(x, param["pool_height"], param["pool_width"],
                                              param["stride"], param["pad"]))

        def bwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            x = rng(150 + k).standard_normal(xs)
            return grad_check(get(fwd), get(bwd), {"x": x}, dict(param))

        label = f"{ph}x{pw} s={s} p={p}"
        register("avg_pool", f"forward {label} vs reference", (fwd,), FWD_TOL)(fwd_case)
        register("avg_pool", f"backward {label} vs numerical", (fwd, bwd))(bwd_case)


def _register_relu_max_pool() -> None:
    """ReLU then max pooling as one layer: forward against ``relu`` of the reference pool
    (the two commute), backward against numerical gradients, and on tied maxima and windows
    without a positive entry against the chain rule ``relu'(x) * pool_backward(relu(x))``."""
    layer, fwd, bwd = "relu_max_pool", "relu_max_pool_forward", "relu_max_pool_backward"
    for k, (xs, ph, pw, s, p, ceil, ext) in enumerate(POOL_FWD_CASES):
        param = _pool_param(ph, pw, s, p, ceil)
        label = f"{ph}x{pw} s={s}" + (f" p={p}" if p else "") + (" ceil" if ceil else "")

        def fwd_case(get: Getter, xs=xs, param=param, ph=ph, pw=pw, s=s, p=p, ceil=ceil,
                     k=k) -> tuple[float, str]:
            x = rng(160 + k).standard_normal(xs)
            return forward_check(get(fwd), (x, dict(param)),
                                 np.maximum(ref_max_pool(x, ph, pw, s, p, ceil), 0))

        def bwd_case(get: Getter, xs=xs, param=param, k=k) -> tuple[float, str]:
            x = rng(170 + k).standard_normal((1, 2) + xs[2:])
            return grad_check(get(fwd), get(bwd), {"x": x}, dict(param), seed=k)

        register(layer, f"forward {label} vs relu of reference", (fwd,), FWD_TOL,
                 extended=ext)(fwd_case)
        register(layer, f"backward {label} vs numerical", (fwd, bwd), BWD_TOL,
                 extended=ext)(bwd_case)

    def ties_case(get: Getter) -> tuple[float, str]:
        r = rng(180)
        x = r.integers(-2, 3, size=(2, 2, 9, 9)).astype(np.float64)
        out, cache = get(fwd)(x, _pool_param(3, 3, 2, 0, False))
        dout = r.standard_normal(np.shape(out))
        dx = np.asarray(get(bwd)(dout, cache))
        expected = ref_max_pool_backward(np.maximum(x, 0), dout, 3, 3, 2) * (x > 0)
        if dx.shape != x.shape:
            return math.inf, f"dx shape {dx.shape}, expected {x.shape}"
        return rel_error(dx, expected), ""

    register(layer, "backward 3x3 s=2 tied maxima and non-positive windows",
             (fwd, bwd), FWD_TOL)(ties_case)


for _b in POOL_BACKENDS:
    _register_max_pool(f"max_pool_{_b}", f"max_pool_forward_{_b}", f"max_pool_backward_{_b}")
_register_max_pool("max_pool (dispatch)", "max_pool_forward", "max_pool_backward")
_register_relu_max_pool()
_register_avg_pool()
