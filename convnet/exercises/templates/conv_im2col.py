"""Fast convolution: im2col with stride tricks, its adjoint col2im, and a convolution
built on one matrix product.

im2col copies every receptive field of the padded input into a column, so that the whole
convolution becomes one matrix product (Chellapilla, Puri & Simard 2006, "High
performance convolutional neural networks for document processing"). Build the windows
without Python loops over output positions: ``numpy.lib.stride_tricks.sliding_window_view``
(or ``as_strided``) gives a view of every window of an array without copying it; slice the
view with the stride, then copy it once into the column layout below.

Column layout used throughout: ``cols`` has shape (C * HH * WW, N * H' * W'). Row index
``(c * HH + i) * WW + j`` holds channel c, filter row i, filter column j; column index
``(n * H' + y) * W' + x`` holds image n, output row y, output column x.

col2im goes the other way: it adds every entry of a column matrix back into the pixel it
was read from (pixels covered by several windows receive several contributions), then
crops the padding. It is the adjoint (transpose) of im2col: for every x and cols,
sum(im2col(x) * cols) == sum(x * col2im(cols, ...)), which is what the backward pass of
the convolution needs.

Data is (N, C, H, W), filters (F, C, HH, WW). Each ``*_forward`` returns ``(out, cache)``;
``*_backward(dout, cache)`` returns the gradients of the forward inputs. Keep the dtype of
the inputs and never modify an input array in place.

Check your work at any time with

    convnet check --impl conv_im2col.py
"""

import numpy as np  # noqa: F401  (you will need it)
from numpy.lib.stride_tricks import sliding_window_view  # noqa: F401  (for im2col)

__convnet_exercise__ = "conv_im2col"


def im2col(x, HH, WW, stride=1, pad=0):
    """Unfold every HH x WW receptive field of the zero-padded input into a column.

    Inputs:
    - x: input data of shape (N, C, H, W).
    - HH, WW: window (filter) height and width.
    - stride: step between neighbouring windows.
    - pad: zeros added on every side of the height and width axes.

    Returns:
    - cols: new array of shape (C * HH * WW, N * H' * W'), in the layout of the module
      docstring, where H' = 1 + (H + 2 * pad - HH) // stride and
      W' = 1 + (W + 2 * pad - WW) // stride.
    """
    raise NotImplementedError(
        "im2col: np.pad, then sliding_window_view(xp, (HH, WW), axis=(2, 3)) sliced "
        "[:, :, ::stride, ::stride], transposed to (C, HH, WW, N, H', W') and reshaped")


def col2im(cols, x_shape, HH, WW, stride=1, pad=0):
    """Adjoint of im2col: sum every column entry back into the input pixel it came from.

    Inputs:
    - cols: array of shape (C * HH * WW, N * H' * W') in the layout of im2col.
    - x_shape: the shape (N, C, H, W) of the input that im2col unfolded.
    - HH, WW, stride, pad: as given to im2col.

    Returns:
    - x: array of shape (N, C, H, W) (padding cropped off), dtype of cols. Pixels read
      by several windows hold the sum of all their entries.
    """
    raise NotImplementedError(
        "col2im: reshape cols to (C, HH, WW, N, H', W'); for each filter offset (i, j) "
        "ADD the block into the strided slice of a zero padded array (+=, never =); crop")


def conv_forward_im2col(x, w, b, conv_param):
    """Forward pass of a convolutional layer as one matrix product over im2col columns.

    Inputs:
    - x: input data of shape (N, C, H, W).
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: dict with 'stride' and 'pad' (as in conv_forward_naive).

    Returns a tuple of:
    - out: output of shape (N, F, H', W'), H' = 1 + (H + 2 * pad - HH) // stride,
      W' = 1 + (W + 2 * pad - WW) // stride.
    - cache: whatever conv_backward_im2col needs, e.g. (x, w, b, conv_param, cols).
    """
    raise NotImplementedError(
        "conv_forward_im2col: cols = im2col(...); out = w.reshape(F, -1) @ cols + b[:, None], "
        "reshaped to (F, N, H', W') and transposed to (N, F, H', W')")


def conv_backward_im2col(dout, cache):
    """Backward pass of conv_forward_im2col.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: what conv_forward_im2col saved.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W) (use col2im).
    - dw: gradient with respect to w, shape (F, C, HH, WW).
    - db: gradient with respect to b, shape (F,).
    """
    raise NotImplementedError(
        "conv_backward_im2col: with d = dout as (F, N*H'*W'): dw = d @ cols.T, "
        "db = d.sum(1), dx = col2im(w.reshape(F, -1).T @ d, ...)")
