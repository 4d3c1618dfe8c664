"""Input checks shared by every functional layer.

One home for them, so that every backend of a layer accepts and rejects exactly the same inputs
with the same words. Every error is a :class:`convnet.errors.LayerInputError` (a ``ValueError``)
whose message starts with the name of the function that raised it and states the expected
shape, e.g. ``conv_forward_naive: x must be 4-D (N, C, H, W) with C == w.shape[1] == 3, got
(2, 4, 8, 8)``. Argument order everywhere: the function name first, then what is checked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._geometry import ConvGeometry, PoolGeometry, out_size, transpose_out_size

_MAX_POOL_KEYS = "{'pool_height', 'pool_width', 'stride', 'pad': 0, 'ceil_mode': False}"


# ------------------------------------------------------------------------------ any layer


def check_float(fn: str, name: str, a: Any) -> np.ndarray:
    """Return ``a`` as an ndarray (no copy when it is one), unless its dtype is not floating.

    Integer and bool arrays are refused rather than silently cast: a float layer fed integer
    pixels is almost always a forgotten ``astype``/scaling step.
    """
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        hint = " (convert with .astype(np.float32))" if arr.dtype.kind in "biu" else ""
        raise LayerInputError(
            f"{fn}: {name} must be a floating-point array, got dtype {arr.dtype}{hint}"
        )
    return arr


def check_ndim(fn: str, name: str, a: np.ndarray, ndim: int, layout: str) -> None:
    """Raise unless ``a.ndim == ndim``; ``layout`` names the axes, e.g. ``'(N, C, H, W)'``."""
    if a.ndim != ndim:
        raise LayerInputError(f"{fn}: {name} must be {ndim}-D {layout}, got shape {a.shape}")


def check_shape(fn: str, name: str, a: Any, shape: tuple, layout: str) -> None:
    """Raise unless ``np.shape(a) == shape``; ``layout`` names the axes, e.g. ``'(F,)'``."""
    if np.shape(a) != tuple(shape):
        raise LayerInputError(
            f"{fn}: {name} must have shape {layout} == {tuple(shape)}, got {np.shape(a)}"
        )


def check_mode(fn: str, what: str, param: dict) -> str:
    """Return ``param['mode']`` (default ``'train'``) unless it is not 'train' or 'test'."""
    mode = param.get("mode", "train")
    if mode not in ("train", "test"):
        raise LayerInputError(f"{fn}: {what}['mode'] must be 'train' or 'test', got {mode!r}")
    return mode


def check_dout(fn: str, dout: Any, shape: tuple, layout: str = "") -> np.ndarray:
    """Return the upstream gradient as a floating ndarray of the forward output's ``shape``.

    ``layout`` names the axes in the message, e.g. ``"(N, F, H', W')"``.
    """
    dout = check_float(fn, "dout", dout)
    shape = tuple(shape)
    if dout.shape != shape:
        want = f"{layout} == {shape}" if layout else str(shape)
        raise LayerInputError(
            f"{fn}: dout must have the forward output's shape {want}, got {dout.shape}"
        )
    return dout


def check_cache(fn: str, cache: Any, tag: str, length: int) -> tuple:
    """Return ``cache`` unless it is not the ``length``-tuple made by the forward pass ``tag``."""
    if not (isinstance(cache, tuple) and len(cache) == length and cache[0] == tag):
        got = cache[0] if isinstance(cache, tuple) and cache else type(cache).__name__
        raise LayerInputError(
            f"{fn}: cache must come from the {tag!r} forward pass, got one from {got!r}"
        )
    return cache


def check_param_dict(fn: str, what: str, param: Any, expected: str) -> dict:
    """Return ``param`` unless it is not a dict (``what``: e.g. ``'conv_param'``)."""
    if not isinstance(param, dict):
        raise LayerInputError(f"{fn}: {what} must be a dict {expected}, got {param!r}")
    return param


def int_param(
    fn: str, what: str, param: dict, key: str, default: int | None, minimum: int
) -> int:
    """Read the integer hyper-parameter ``param[key]`` (``default`` None: the key is required).

    Bools and floats are refused (``2.0`` for a stride is a typo, not a request to round).
    """
    if key not in param and default is None:
        raise LayerInputError(f"{fn}: {what} needs key {key!r}, got keys {sorted(param)}")
    v = param.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise LayerInputError(f"{fn}: {what}[{key!r}] must be an int, got {v!r}")
    if v < minimum:
        raise LayerInputError(f"{fn}: {what}[{key!r}] must be >= {minimum}, got {v}")
    return int(v)


# ------------------------------------------------------------------------------ dense layers


def check_affine_inputs(
    fn: str, x: Any, w: Any, b: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate x (N, d1, ..., dk), w (D, M) with D = d1*...*dk, b (M,); return them as arrays."""
    x = check_float(fn, "x", x)
    w = check_float(fn, "w", w)
    b = check_float(fn, "b", b)
    check_ndim(fn, "w", w, 2, "(D, M)")
    D, M = w.shape
    if x.ndim < 2 or math.prod(x.shape[1:]) != D:
        raise LayerInputError(
            f"{fn}: x must be (N, d1, ..., dk) with d1*...*dk == w.shape[0] == {D}, "
            f"got x shape {x.shape}"
        )
    check_shape(fn, "b", b, (M,), "(M,)")
    return x, w, b


def check_batchnorm_inputs(
    fn: str, x: Any, gamma: Any, beta: Any, bn_param: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Validate x (N, D), gamma and beta (D,) and bn_param's mode; return them.

    Train mode needs N >= 2: the variance of one sample is 0 and normalising divides by it.
    """
    x, gamma, beta = (check_float(fn, name, a)
                      for name, a in (("x", x), ("gamma", gamma), ("beta", beta)))
    check_ndim(fn, "x", x, 2, "(N, D)")
    N, D = x.shape
    if gamma.shape != (D,) or beta.shape != (D,):
        raise LayerInputError(
            f"{fn}: x (N, D) = {x.shape} needs gamma and beta of shape (D,) == ({D},), got "
            f"{gamma.shape} and {beta.shape}"
        )
    mode = check_mode(fn, "bn_param", check_param_dict(fn, "bn_param", bn_param, "{'mode'}"))
    if mode == "train" and N < 2:
        raise LayerInputError(f"{fn}: train mode needs a batch of at least 2 samples, got N={N}")
    return x, gamma, beta, mode


# ------------------------------------------------------------------------------ convolution


def conv_params(fn: str, conv_param: Any) -> tuple[int, int, int]:
    """Validate ``conv_param`` and return ``(stride, pad, dilation)`` (defaults 1, 0, 1)."""
    check_param_dict(fn, "conv_param", conv_param, "{'stride': s, 'pad': p}")
    stride = int_param(fn, "conv_param", conv_param, "stride", 1, 1)
    pad = int_param(fn, "conv_param", conv_param, "pad", 0, 0)
    dilation = int_param(fn, "conv_param", conv_param, "dilation", 1, 1)
    return stride, pad, dilation


def _check_conv_arrays(fn: str, x: np.ndarray, w: np.ndarray, x_layout: str, x_ch: int) -> None:
    """Shared shape checks: w 4-D, x 4-D with ``x.shape[1] == w.shape[x_ch]``, no empty axis."""
    if w.ndim != 4:
        raise LayerInputError(f"{fn}: w must be 4-D (F, C, HH, WW), got shape {w.shape}")
    ch, axis = ("C", 1) if x_ch == 1 else ("F", 0)
    if x.ndim != 4 or x.shape[1] != w.shape[x_ch]:
        raise LayerInputError(
            f"{fn}: x must be 4-D {x_layout} with {ch} == w.shape[{axis}] == {w.shape[x_ch]}, "
            f"got {x.shape}"
        )
    if min(w.shape) < 1 or min(x.shape) < 1:
        raise LayerInputError(f"{fn}: x {x.shape} and w {w.shape} must have no empty axis")


def _conv_output(
    fn: str, x_shape: tuple, HH: int, WW: int, stride: int, pad: int, dilation: int,
    w_shape: tuple | None = None,
) -> tuple[int, int]:
    """``(H', W')`` of a convolution of an input of ``x_shape`` (N, C, H, W), or raise."""
    H, W = x_shape[2], x_shape[3]
    H_out = out_size(H, HH, stride, pad, dilation)
    W_out = out_size(W, WW, stride, pad, dilation)
    if H_out < 1 or W_out < 1:
        detail = f" (x {x_shape}, w {w_shape}, pad {pad})" if w_shape else ""
        raise LayerInputError(
            f"{fn}: output size would be {H_out}x{W_out}: the (dilated) kernel "
            f"{dilation * (HH - 1) + 1}x{dilation * (WW - 1) + 1} does not fit the padded input "
            f"{H + 2 * pad}x{W + 2 * pad}{detail}"
        )
    return H_out, W_out


def conv_geometry(
    fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, conv_param: Any
) -> ConvGeometry:
    """Check the shapes of a convolution's inputs and compute its output size.

    Inputs: x (N, C, H, W); w (F, C, HH, WW); b (F,) or None to skip that check;
    conv_param {'stride' (>= 1), 'pad' (>= 0), 'dilation' (>= 1, optional)}.
    """
    stride, pad, dilation = conv_params(fn, conv_param)
    _check_conv_arrays(fn, x, w, "(N, C, H, W)", 1)
    F, _, HH, WW = w.shape
    if b is not None:
        check_shape(fn, "b", b, (F,), "(F,)")
    N, C, H, W = x.shape
    H_out, W_out = _conv_output(fn, x.shape, HH, WW, stride, pad, dilation, w.shape)
    return ConvGeometry(N, C, H, W, F, HH, WW, stride, pad, dilation, H_out, W_out)


def im2col_output(
    fn: str, x_shape: tuple, HH: int, WW: int, stride: int, pad: int, dilation: int
) -> tuple[int, int]:
    """Validate the arguments of ``im2col``/``col2im``; return the output size ``(H', W')``."""
    for name, v, lo in (("HH", HH, 1), ("WW", WW, 1), ("stride", stride, 1),
                        ("pad", pad, 0), ("dilation", dilation, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise LayerInputError(f"{fn}: {name} must be an int >= {lo}, got {v!r}")
    if len(x_shape) != 4:
        raise LayerInputError(f"{fn}: x must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    return _conv_output(fn, x_shape, HH, WW, stride, pad, dilation)


def check_conv_inputs(
    fn: str, x: Any, w: Any, b: Any, conv_param: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvGeometry]:
    """Validate dtypes and shapes; return ``x, w, b`` in their common float dtype and the
    geometry. The common dtype is ``np.result_type(x, w, b)``: float32 stays float32."""
    x = check_float(fn, "x", x)
    w = check_float(fn, "w", w)
    b = check_float(fn, "b", b)
    geom = conv_geometry(fn, x, w, b, conv_param)
    dtype = np.result_type(x.dtype, w.dtype, b.dtype)
    x, w, b = (a.astype(dtype, copy=False) for a in (x, w, b))
    return x, w, b, geom


def conv_transpose_geometry(
    fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: Any
) -> ConvGeometry:
    """Geometry of the convolution whose adjoint the transposed convolution is.

    Inputs: x (N, F, H, W); w (F, C, HH, WW); b (C,); conv_param as for a convolution plus
    'output_padding' (``0 <= op < stride``). The returned geometry maps (N, C, H', W') to
    (N, F, H, W), with H' the transposed convolution's output height.
    """
    stride, pad, dilation = conv_params(fn, conv_param)
    op = int_param(fn, "conv_param", conv_param, "output_padding", 0, 0)
    if op >= stride:
        # op >= s would add a whole output row's worth: then the convolution maps the result
        # to a larger size and this is no longer its adjoint.
        raise LayerInputError(
            f"{fn}: conv_param['output_padding'] must be < stride == {stride}, got {op}"
        )
    _check_conv_arrays(fn, x, w, "(N, F, H, W)", 0)
    F, C, HH, WW = w.shape
    check_shape(fn, "b", b, (C,), "(C,)")
    N, _, H, W = x.shape
    H_t = transpose_out_size(H, HH, stride, pad, dilation, op)
    W_t = transpose_out_size(W, WW, stride, pad, dilation, op)
    if H_t < 1 or W_t < 1:
        raise LayerInputError(
            f"{fn}: output size would be {H_t}x{W_t} for x {x.shape}, w {w.shape}, "
            f"stride {stride}, pad {pad}: reduce pad"
        )
    return ConvGeometry(N, C, H_t, W_t, F, HH, WW, stride, pad, dilation, H, W)


# ------------------------------------------------------------------------------ pooling


def _pool_output(
    fn: str, x: np.ndarray, ph: int, pw: int, s: int, pad: int, ceil_mode: bool
) -> PoolGeometry:
    N, C, H, W = x.shape
    H_out = out_size(H, ph, s, pad, ceil_mode=ceil_mode)
    W_out = out_size(W, pw, s, pad, ceil_mode=ceil_mode)
    if H_out < 1 or W_out < 1:
        raise LayerInputError(
            f"{fn}: a {ph}x{pw} window with pad {pad} does not fit the input: x has shape "
            f"(N, C, H, W) = {x.shape}, expected H + 2*pad >= {ph} and W + 2*pad >= {pw}"
        )
    return PoolGeometry(N, C, H, W, ph, pw, s, pad, ceil_mode, H_out, W_out)


def _pool_input(fn: str, x: Any, pool_param: Any, expected: str) -> np.ndarray:
    check_param_dict(fn, "pool_param", pool_param, expected)
    x = check_float(fn, "x", x)
    check_ndim(fn, "x", x, 4, "(N, C, H, W)")
    return x


def check_max_pool_inputs(fn: str, x: Any, pool_param: Any) -> tuple[np.ndarray, PoolGeometry]:
    """Validate max pooling's ``x`` (N, C, H, W) and ``pool_param``; return x and the geometry.

    ``pool_height``, ``pool_width``, ``stride`` are required ints >= 1; ``pad`` (default 0)
    must be below the window size, so that every window covers a real pixel; ``ceil_mode``
    (default False) a bool.
    """
    x = _pool_input(fn, x, pool_param, _MAX_POOL_KEYS)
    ph, pw, s = (int_param(fn, "pool_param", pool_param, k, None, 1)
                 for k in ("pool_height", "pool_width", "stride"))
    pad = int_param(fn, "pool_param", pool_param, "pad", 0, 0)
    ceil_mode = pool_param.get("ceil_mode", False)
    if not isinstance(ceil_mode, bool | np.bool_):
        raise LayerInputError(
            f"{fn}: pool_param['ceil_mode'] must be a bool, got {ceil_mode!r}"
        )
    if pad >= min(ph, pw):
        raise LayerInputError(
            f"{fn}: pad must satisfy 0 <= pad < min(pool_height, pool_width) = "
            f"{min(ph, pw)} so every window covers a real pixel, got pad={pad}"
        )
    return x, _pool_output(fn, x, ph, pw, s, pad, bool(ceil_mode))


def check_avg_pool_inputs(fn: str, x: Any, pool_param: Any) -> tuple[np.ndarray, PoolGeometry]:
    """Validate average pooling's ``x`` (N, C, H, W) and ``pool_param``; return x and geometry.

    Defaults: ``pool_height`` 2, ``pool_width`` = pool_height, ``stride`` = pool_height,
    ``pad`` 0, at most half the window; no ceil mode.
    """
    x = _pool_input(fn, x, pool_param, "{'pool_height', 'pool_width', 'stride', 'pad': 0}")
    ph = int_param(fn, "pool_param", pool_param, "pool_height", 2, 1)
    pw = int_param(fn, "pool_param", pool_param, "pool_width", ph, 1)
    s = int_param(fn, "pool_param", pool_param, "stride", ph, 1)
    pad = int_param(fn, "pool_param", pool_param, "pad", 0, 0)
    if 2 * pad > min(ph, pw):
        # PyTorch's rule; larger padding makes windows of (almost) nothing but zeros.
        raise LayerInputError(
            f"{fn}: pad must be at most half the window (2*pad <= min(pool_height, "
            f"pool_width)), got {pool_param}"
        )
    if pool_param.get("ceil_mode", False):
        raise LayerInputError(f"{fn}: ceil_mode is not supported for average pooling")
    return x, _pool_output(fn, x, ph, pw, s, pad, False)
