"""Max pooling, the readable reference: explicit loops over every output position.

All three backends (naive, im2col, numba) share one signature and one semantics::

    out, cache = max_pool_forward_*(x, pool_param)
    dx = max_pool_backward_*(dout, cache)

``pool_param`` keys:

- ``pool_height``, ``pool_width`` (int >= 1): window size;
- ``stride`` (int >= 1): step between windows (may be smaller than the window, giving
  overlapping windows such as 3x3 stride 2, or larger, skipping pixels);
- ``pad`` (int, default 0): implicit padding on every side. Padded cells count as -inf, so
  they are never the maximum; ``0 <= pad < min(pool_height, pool_width)`` so every window
  holds at least one real pixel;
- ``ceil_mode`` (bool, default False): Caffe-style rounding of the output size.

Output size along one axis (input ``H``, window ``k``, stride ``s``, pad ``p``)::

    floor mode:  H' = floor((H + 2p - k) / s) + 1
    ceil mode:   H' = ceil((H + 2p - k) / s) + 1, minus 1 if the last window would start
                 at or beyond H + p (Caffe's rule: the last window starts inside the image
                 or its leading padding, so it always covers a real pixel)

In ceil mode the last window may hang over the bottom/right edge; it only covers the real
pixels it overlaps. Caffe applies the "minus 1" correction only when ``pad > 0``; we apply it
always. With ``pad == 0`` the two agree whenever ``stride <= window`` (every practical
network); for ``stride > window`` Caffe would emit windows that cover no pixel at all.

Ties: when several cells of a window hold the maximum, the whole upstream gradient of that
window goes to the FIRST of them in row-major window order (top row first, then left to
right). Every backend follows this rule, so their gradients agree exactly. Inputs are
assumed free of NaN (NaN handling differs between backends).

Overlapping windows: a pixel that is the maximum of several windows receives the SUM of
their upstream gradients (backward accumulates; it never assigns).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from convnet.errors import ConvnetError


class PoolError(ConvnetError, ValueError):
    """Bad input to a max-pooling function (wrong shape, dtype or ``pool_param``)."""


class PoolGeometry(NamedTuple):
    """Validated pooling geometry shared by all backends."""

    N: int
    C: int
    H: int
    W: int
    ph: int
    pw: int
    stride: int
    pad: int
    ceil_mode: bool
    Hout: int
    Wout: int


def pool_output_size(size: int, k: int, stride: int, pad: int = 0, ceil_mode: bool = False) -> int:
    """Output length of max pooling along one axis (see the module docstring for the rule).

    Inputs:
    - size: input length H (without padding)
    - k: window length
    - stride: step between windows
    - pad: padding on each side
    - ceil_mode: Caffe-style ceil rounding

    Returns the output length H' (may be <= 0 if the window does not fit; callers check).
    """
    span = size + 2 * pad - k
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # Caffe: the last window must start strictly inside the image (or its leading pad).
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _as_int(pool_param: dict, key: str, fname: str, default: Any = None) -> int:
    if key not in pool_param:
        if default is None:
            raise PoolError(
                f"{fname}: pool_param needs key {key!r} "
                "(expected {'pool_height', 'pool_width', 'stride', 'pad': 0, "
                "'ceil_mode': False}), "
                f"got keys {sorted(pool_param)}"
            )
        return default
    v = pool_param[key]
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise PoolError(f"{fname}: pool_param[{key!r}] must be an int, got {v!r}")
    return int(v)


def pool_geometry(x: np.ndarray, pool_param: dict, fname: str) -> PoolGeometry:
    """Validate ``x`` and ``pool_param`` and compute the output size.

    Inputs:
    - x: array of shape (N, C, H, W), floating dtype
    - pool_param: dict (see module docstring)
    - fname: name of the calling function, used in error messages

    Returns a PoolGeometry. Raises PoolError (a ValueError) on bad input.
    """
    if not isinstance(pool_param, dict):
        raise PoolError(f"{fname}: pool_param must be a dict, got {type(pool_param).__name__}")
    if not isinstance(x, np.ndarray):
        raise PoolError(f"{fname}: x must be a numpy array (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise PoolError(f"{fname}: x must be 4-D (N, C, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise PoolError(f"{fname}: x must have a floating dtype, got {x.dtype}")
    ph = _as_int(pool_param, "pool_height", fname)
    pw = _as_int(pool_param, "pool_width", fname)
    s = _as_int(pool_param, "stride", fname)
    pad = _as_int(pool_param, "pad", fname, default=0)
    ceil_mode = pool_param.get("ceil_mode", False)
    if not isinstance(ceil_mode, bool | np.bool_):
        raise PoolError(f"{fname}: pool_param['ceil_mode'] must be a bool, got {ceil_mode!r}")
    ceil_mode = bool(ceil_mode)
    if ph < 1 or pw < 1 or s < 1:
        raise PoolError(
            f"{fname}: pool_height, pool_width and stride must be >= 1, got "
            f"pool_height={ph}, pool_width={pw}, stride={s}"
        )
    if pad < 0 or pad >= ph or pad >= pw:
        raise PoolError(
            f"{fname}: pad must satisfy 0 <= pad < min(pool_height, pool_width) = "
            f"{min(ph, pw)} so every window covers a real pixel, got pad={pad}"
        )
    N, C, H, W = x.shape
    Hout = pool_output_size(H, ph, s, pad, ceil_mode)
    Wout = pool_output_size(W, pw, s, pad, ceil_mode)
    if Hout < 1 or Wout < 1:
        raise PoolError(
            f"{fname}: a {ph}x{pw} window with pad {pad} does not fit the input: x has shape "
            f"(N, C, H, W) = {x.shape}, expected H + 2*pad >= {ph} and W + 2*pad >= {pw}"
        )
    return PoolGeometry(N, C, H, W, ph, pw, s, pad, ceil_mode, Hout, Wout)


def check_dout(dout: np.ndarray, g: PoolGeometry, fname: str) -> None:
    """Raise PoolError unless ``dout`` has the forward output's shape (N, C, H', W')."""
    expected = (g.N, g.C, g.Hout, g.Wout)
    if not isinstance(dout, np.ndarray) or dout.shape != expected:
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise PoolError(f"{fname}: dout must have the output shape {expected}, got {got}")
    if not np.issubdtype(dout.dtype, np.floating):
        raise PoolError(f"{fname}: dout must have a floating dtype, got {dout.dtype}")


def window_bounds(i: int, k: int, stride: int, pad: int, size: int) -> tuple[int, int]:
    """Real-pixel extent ``[start, end)`` of window ``i`` along one axis (clipped to the image)."""
    start = i * stride - pad
    return max(start, 0), min(start + k, size)


def max_pool_forward_naive(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling forward pass, one output value at a time.

    Inputs:
    - x: input of shape (N, C, H, W), float32 or float64
    - pool_param: {'pool_height', 'pool_width', 'stride', 'pad': 0, 'ceil_mode': False}

    Returns a tuple of:
    - out: (N, C, H', W') with H', W' as in the module docstring; dtype of x
    - cache: (x, geometry) for max_pool_backward_naive
    """
    g = pool_geometry(x, pool_param, "max_pool_forward_naive")
    out = np.empty((g.N, g.C, g.Hout, g.Wout), dtype=x.dtype)
    for n in range(g.N):
        for c in range(g.C):
            for i in range(g.Hout):
                h0, h1 = window_bounds(i, g.ph, g.stride, g.pad, g.H)
                for j in range(g.Wout):
                    w0, w1 = window_bounds(j, g.pw, g.stride, g.pad, g.W)
                    out[n, c, i, j] = x[n, c, h0:h1, w0:w1].max()
    return out, (x, g)


def max_pool_backward_naive(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling backward pass, one window at a time.

    Inputs:
    - dout: upstream gradient (N, C, H', W')
    - cache: from max_pool_forward_naive

    Returns:
    - dx: gradient w.r.t. x, (N, C, H, W), dtype of x. Each window's gradient goes to its
      first maximum (row-major); overlapping windows accumulate.
    """
    x, g = cache
    check_dout(dout, g, "max_pool_backward_naive")
    dx = np.zeros_like(x)
    for n in range(g.N):
        for c in range(g.C):
            for i in range(g.Hout):
                h0, h1 = window_bounds(i, g.ph, g.stride, g.pad, g.H)
                for j in range(g.Wout):
                    w0, w1 = window_bounds(j, g.pw, g.stride, g.pad, g.W)
                    window = x[n, c, h0:h1, w0:w1]
                    # np.argmax returns the first maximum in row-major order: our tie rule.
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, h0 + a, w0 + b] += dout[n, c, i, j]
    return dx
