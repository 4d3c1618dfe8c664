"""Convolution and max pooling, written as plain loops.

Implement every function below with explicit Python loops over the output positions: the
point is to see exactly which input pixels each output value reads. Speed does not matter
here. Data is laid out (N, C, H, W): N images of C channels, H rows, W columns; filters are
(F, C, HH, WW).

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of the forward inputs, each with its input's shape. Keep the dtype of the
inputs, and never modify an input array in place (the checker compares every input before
and after each call).

Check your work at any time with

    convnet check --impl conv_naive.py
"""

import numpy as np  # noqa: F401  (you will need it)

__convnet_exercise__ = "conv_naive"


def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer (cross-correlation, as in every framework).

    The input is zero-padded by 'pad' pixels on each side of both spatial axes; each
    filter then slides over it 'stride' pixels at a time. Output pixel (n, f, i, j) is
    sum(window * w[f]) + b[f], where window = x_padded[n, :, i*stride : i*stride + HH,
    j*stride : j*stride + WW].

    Inputs:
    - x: input data of shape (N, C, H, W).
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: dict with
      - 'stride': step between neighbouring windows (both directions).
      - 'pad': number of zeros added on every side of the height and width axes.

    Returns a tuple of:
    - out: output of shape (N, F, H', W') where
      H' = 1 + (H + 2 * pad - HH) // stride and W' = 1 + (W + 2 * pad - WW) // stride.
    - cache: (x, w, b, conv_param), kept for conv_backward_naive.
    """
    raise NotImplementedError(
        "conv_forward_naive: pad x, then loop over n, f, i, j computing one window's "
        "dot product with w[f] plus b[f]")


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer.

    Every window that produced out[n, f, i, j] receives dout[n, f, i, j] * w[f] in dx, and
    w[f] receives dout[n, f, i, j] * window in dw. Windows overlap, so accumulate (+=).
    Compute dx on the padded input and crop the padding off at the end.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: the (x, w, b, conv_param) saved by conv_forward_naive.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W).
    - dw: gradient with respect to w, shape (F, C, HH, WW).
    - db: gradient with respect to b, shape (F,).
    """
    raise NotImplementedError(
        "conv_backward_naive: loop over the same windows as the forward pass and "
        "accumulate into dx_padded, dw and db; crop the padding from dx_padded")


def max_pool_forward_naive(x, pool_param):
    """Forward pass of max pooling (no padding).

    Output pixel (n, c, i, j) is the maximum of x[n, c, i*stride : i*stride + pool_height,
    j*stride : j*stride + pool_width]. Windows may overlap (stride < pool size).

    Inputs:
    - x: input data of shape (N, C, H, W).
    - pool_param: dict with
      - 'pool_height', 'pool_width': the window size.
      - 'stride': step between neighbouring windows.

    Returns a tuple of:
    - out: output of shape (N, C, H', W') where
      H' = 1 + (H - pool_height) // stride and W' = 1 + (W - pool_width) // stride.
    - cache: (x, pool_param), kept for max_pool_backward_naive.
    """
    raise NotImplementedError(
        "max_pool_forward_naive: loop over n, c, i, j and take each window's maximum")


def max_pool_backward_naive(dout, cache):
    """Backward pass of max pooling.

    Each window sends its dout[n, c, i, j] to the position of its maximum; when several
    elements tie for the maximum, the first one in row-major order gets it. Overlapping
    windows may share a maximum: add their gradients up, do not overwrite.

    Inputs:
    - dout: upstream gradient of shape (N, C, H', W').
    - cache: the (x, pool_param) saved by max_pool_forward_naive.

    Returns:
    - dx: gradient with respect to x, shape (N, C, H, W).
    """
    raise NotImplementedError(
        "max_pool_backward_naive: for each window, add dout to the first position of its "
        "maximum (np.argmax on the flattened window, then np.unravel_index)")
