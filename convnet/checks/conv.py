"""Convolution checks: every conv backend, Winograd, im2col/col2im, transposed convolution.

Every general backend (``naive``, ``im2col``, ``numba``) and the dispatcher ``conv_forward``
face the same cases, so a fast backend cannot pass on easier shapes than the readable one:

* forward against :func:`~convnet.checks.references.ref_conv` (``einsum`` over sliding
  windows) on odd, non-square sizes: stride 1, stride 2 with padding, stride 3 with a
  non-square 5x3 filter, a 1x1 filter with stride 2 (``FWD_TOL``);
* backward against numerical gradients at s=1 p=0 and s=2 p=1 (``BWD_TOL``); the second
  catches a backward pass that ignores the padding;
* float32 in, float32 out (``F32_TOL``);
* for the fast backends, forward and backward on a larger 5x5 s=2 p=2 case against
  convnet's own naive loops: analytic against analytic, so ``FWD_TOL``;
* extended: dilation 2, forward and backward.

Winograd F(2x2, 3x3) accepts only 3x3 stride-1 convolutions: it is checked on those, with
every padding, odd sizes (the grid of 2x2 output tiles is cropped) and 40 channels.

im2col/col2im are checked by an identity instead of a reference: col2im is the adjoint of
im2col, ``<im2col(x), y> == <x, col2im(y)>`` to ``ADJ_TOL``. This holds only if col2im
*sums* the overlapping patches (a col2im that overwrites fails) and only if both agree on
the geometry (an im2col wrong for stride > 1 fails the s=2 and s=3 cases).

The transposed convolution is checked against a scatter-of-filters reference (with output
padding), as the adjoint of the convolution (``<conv(x), y> == <x, convT(y)>``), by
numerical gradients and in float32.
"""

from __future__ import annotations

import math

import numpy as np

from convnet.checks.compare import float32_check, forward_check, grad_check, rng
from convnet.checks.references import ref_conv, ref_conv_transpose
from convnet.checks.registry import ADJ_TOL, BWD_TOL, F32_TOL, FWD_TOL, Getter, register
from convnet.gradcheck import rel_error

CONV_BACKENDS = ("naive", "im2col", "numba")
# (x shape, w shape, stride, pad): odd non-square sizes, stride 2 with and without padding.
CONV_FWD_CASES = (
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
    ((2, 2, 9, 8), (3, 2, 5, 3), 3, 2),
    ((1, 3, 6, 6), (2, 3, 1, 1), 2, 0),
)


def _conv_inputs(xs: tuple, ws: tuple, seed: int) -> tuple[np.ndarray, ...]:
    r = rng(seed)
    return r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])


def _register_conv(layer: str, fwd_name: str, bwd_name: str) -> None:
    for k, (xs, ws, s, p) in enumerate(CONV_FWD_CASES):
        def fwd_case(get: Getter, xs=xs, ws=ws, s=s, p=p, k=k) -> tuple[float, str]:
            x, w, b = _conv_inputs(xs, ws, 10 + k)
            return forward_check(get(fwd_name), (x, w, b, {"stride": s, "pad": p}),
                                 ref_conv(x, w, b, s, p))

        register(layer, f"forward {ws[2]}x{ws[3]} s={s} p={p} vs reference", (fwd_name,),
                 FWD_TOL)(fwd_case)

    # s=1 p=0: overlapping windows without padding; s=2 p=1: stride and padding together.
    for s, p in ((1, 0), (2, 1)):
        def bwd_case(get: Getter, s=s, p=p) -> tuple[float, str]:
            x, w, b = _conv_inputs((2, 2, 5, 6), (3, 2, 3, 3), 20 + s)
            return grad_check(get(fwd_name), get(bwd_name), {"x": x, "w": w, "b": b},
                              {"stride": s, "pad": p})

        register(layer, f"backward 3x3 s={s} p={p} vs numerical", (fwd_name, bwd_name),
                 BWD_TOL)(bwd_case)

    def dilation_case(get: Getter) -> tuple[float, str]:
        x, w, b = _conv_inputs((1, 2, 7, 6), (2, 2, 3, 3), 30)
        param = {"stride": 1, "pad": 2, "dilation": 2}
        err, note = forward_check(get(fwd_name), (x, w, b, param), ref_conv(x, w, b, 1, 2, 2))
        gerr, gnote = grad_check(get(fwd_name), get(bwd_name), {"x": x, "w": w, "b": b}, param)
        return max(err, gerr), "; ".join(n for n in (note, gnote) if n)

    register(layer, "forward+backward dilation=2", (fwd_name, bwd_name), BWD_TOL,
             extended=True)(dilation_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        x, w, b = _conv_inputs((2, 3, 7, 6), (4, 3, 3, 3), 40)
        return float32_check(get(fwd_name), get(bwd_name), (x, w, b, {"stride": 2, "pad": 1}),
                             3, ref_conv(x, w, b, 2, 1))

    register(layer, "float32 in -> float32 out", (fwd_name, bwd_name), F32_TOL)(f32_case)

    if fwd_name != "conv_forward_naive":
        _register_conv_vs_naive(layer, fwd_name, bwd_name)


def _register_conv_vs_naive(layer: str, fwd_name: str, bwd_name: str) -> None:
    def vs_naive(get: Getter) -> tuple[float, str]:
        # A larger shape than the numerical check can afford, against convnet's naive
        # loops (analytic vs analytic, so a tight tolerance).
        from convnet.layers.conv_naive import conv_backward_naive, conv_forward_naive

        x, w, b = _conv_inputs((3, 3, 13, 11), (4, 3, 5, 5), 45)
        param = {"stride": 2, "pad": 2}
        out, cache = get(fwd_name)(x, w, b, dict(param))
        ref_out, ref_cache = conv_forward_naive(x, w, b, dict(param))
        dout = rng(46).standard_normal(ref_out.shape)
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


def _register_winograd() -> None:
    """Winograd F(2x2, 3x3) accepts only 3x3 stride-1 convolutions: check those, with every
    padding and odd sizes (the output tile grid is cropped), and many channels (its use case)."""
    fwd_name, bwd_name = "conv_forward_winograd", "conv_backward_winograd"
    cases = (((2, 3, 7, 6), 0), ((2, 3, 7, 6), 1), ((1, 2, 5, 8), 2), ((2, 40, 6, 7), 1))
    for k, (xs, p) in enumerate(cases):
        ws = (4, xs[1], 3, 3)

        def fwd_case(get: Getter, xs=xs, ws=ws, p=p, k=k) -> tuple[float, str]:
            x, w, b = _conv_inputs(xs, ws, 60 + k)
            return forward_check(get(fwd_name), (x, w, b, {"stride": 1, "pad": p}),
                                 ref_conv(x, w, b, 1, p))

        register("conv_winograd", f"forward 3x3 C={xs[1]} s=1 p={p} vs reference",
                 (fwd_name,), FWD_TOL)(fwd_case)

    for p in (0, 1):
        def bwd_case(get: Getter, p=p) -> tuple[float, str]:
            x, w, b = _conv_inputs((2, 2, 5, 6), (3, 2, 3, 3), 70 + p)
            return grad_check(get(fwd_name), get(bwd_name), {"x": x, "w": w, "b": b},
                              {"stride": 1, "pad": p})

        register("conv_winograd", f"backward 3x3 s=1 p={p} vs numerical", (fwd_name, bwd_name),
                 BWD_TOL)(bwd_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        x, w, b = _conv_inputs((2, 3, 7, 6), (4, 3, 3, 3), 75)
        return float32_check(get(fwd_name), get(bwd_name), (x, w, b, {"stride": 1, "pad": 1}),
                             3, ref_conv(x, w, b, 1, 1))

    register("conv_winograd", "float32 in -> float32 out", (fwd_name, bwd_name),
             F32_TOL)(f32_case)


def _register_im2col() -> None:
    # (x shape, HH, WW, stride, pad): overlapping windows with and without stride/padding.
    cases = (((2, 3, 6, 5), 3, 3, 1, 0), ((2, 2, 7, 6), 3, 3, 2, 1), ((1, 2, 8, 7), 2, 4, 3, 2))
    for k, (xs, HH, WW, s, p) in enumerate(cases):
        def adjoint(get: Getter, xs=xs, HH=HH, WW=WW, s=s, p=p, k=k) -> tuple[float, str]:
            r = rng(50 + k)
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


def _register_conv_transpose() -> None:
    fwd, bwd = "conv_transpose_forward", "conv_transpose_backward"
    layer = "conv_transpose"
    cases = (((2, 3, 4, 5), (3, 2, 3, 3), 1, 0, 0), ((2, 3, 4, 3), (3, 2, 3, 3), 2, 1, 1),
             ((1, 2, 3, 3), (2, 3, 4, 2), 2, 0, 0))
    for k, (xs, ws, s, p, op) in enumerate(cases):
        def fwd_case(get: Getter, xs=xs, ws=ws, s=s, p=p, op=op, k=k) -> tuple[float, str]:
            r = rng(60 + k)
            x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[1])
            param = {"stride": s, "pad": p, "output_padding": op}
            return forward_check(get(fwd), (x, w, b, param), ref_conv_transpose(x, w, b, s, p, op))

        register(layer, f"forward {ws[2]}x{ws[3]} s={s} p={p} op={op} vs reference", (fwd,),
                 FWD_TOL)(fwd_case)

    def adjoint(get: Getter) -> tuple[float, str]:
        # convT(., w) is the adjoint of conv(., w): <conv(x), y> == <x, convT(y)> (zero bias).
        r = rng(70)
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
        r = rng(80)
        x, w, b = r.standard_normal((2, 3, 4, 3)), r.standard_normal((3, 2, 3, 3)), \
            r.standard_normal(2)
        return grad_check(get(fwd), get(bwd), {"x": x, "w": w, "b": b},
                          {"stride": 2, "pad": 1, "output_padding": 1})

    register(layer, "backward s=2 p=1 op=1 vs numerical", (fwd, bwd))(bwd_case)

    def f32_case(get: Getter) -> tuple[float, str]:
        r = rng(90)
        x, w, b = r.standard_normal((2, 3, 4, 5)), r.standard_normal((3, 2, 3, 3)), \
            r.standard_normal(2)
        return float32_check(get(fwd), get(bwd), (x, w, b, {"stride": 2, "pad": 1}), 3,
                             ref_conv_transpose(x, w, b, 2, 1))

    register(layer, "float32 in -> float32 out", (fwd, bwd), F32_TOL)(f32_case)


for _b in CONV_BACKENDS:
    _register_conv(f"conv_{_b}", f"conv_forward_{_b}", f"conv_backward_{_b}")
_register_conv("conv (dispatch)", "conv_forward", "conv_backward")
_register_winograd()
_register_im2col()
_register_conv_transpose()
