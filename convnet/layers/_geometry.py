"""Output sizes of sliding-window layers (convolution, pooling), written once.

Every window layer slides a window of ``k`` taps, ``dilation`` apart, over an input of length
``size`` padded by ``pad`` on both sides, starting a window every ``stride`` positions. The
dilated window covers ``dilation * (k - 1) + 1`` positions, so along one axis

    floor mode:  out = floor((size + 2*pad - dilation*(k-1) - 1) / stride) + 1
    ceil mode:   out = ceil((size + 2*pad - dilation*(k-1) - 1) / stride) + 1, minus 1 if the
                 last window would start at or beyond size + pad

(Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016, relationship
15 with dilation; ceil mode as in Caffe's pooling layer, whose last window must start inside
the image or its leading padding, so it always covers a real pixel). Convolutions use floor
mode; max pooling may use either.
"""

from __future__ import annotations

from typing import NamedTuple


def out_size(
    size: int, k: int, stride: int = 1, pad: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Number of window positions along one axis (see the module docstring).

    Inputs:
    - size: input length (without padding).
    - k: window length in taps; dilation: distance between taps.
    - stride: step between windows; pad: padding on each side.
    - ceil_mode: round up (keeping only windows that start inside the image or its leading pad).

    Returns the output length, 0 when the window does not fit the padded input.
    """
    span = size + 2 * pad - dilation * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


def transpose_out_size(
    size: int, k: int, stride: int = 1, pad: int = 0, dilation: int = 1, output_padding: int = 0
) -> int:
    """Output length of a transposed convolution: the largest input length ``out`` that a
    convolution with these settings maps to ``size`` (plus ``output_padding``, ``< stride``,
    to choose among the lengths that all map to ``size``)."""
    return (size - 1) * stride - 2 * pad + dilation * (k - 1) + 1 + output_padding


def window_bounds(i: int, k: int, stride: int, pad: int, size: int) -> tuple[int, int]:
    """Real-pixel extent ``[start, end)`` of window ``i`` along one axis (clipped to the image)."""
    start = i * stride - pad
    return max(start, 0), min(start + k, size)


class ConvGeometry(NamedTuple):
    """Sizes of one convolution: x (N, C, H, W), w (F, C, HH, WW), out (N, F, H_out, W_out)."""

    N: int
    C: int
    H: int
    W: int
    F: int
    HH: int
    WW: int
    stride: int
    pad: int
    dilation: int
    H_out: int
    W_out: int


class PoolGeometry(NamedTuple):
    """Sizes of one pooling: x (N, C, H, W), window ph x pw, out (N, C, H_out, W_out)."""

    N: int
    C: int
    H: int
    W: int
    ph: int
    pw: int
    stride: int
    pad: int
    ceil_mode: bool
    H_out: int
    W_out: int
