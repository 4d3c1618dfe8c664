"""Fully connected layers and losses.

Implement every function below. Each layer function follows the same contract:

- ``*_forward(inputs...)`` returns ``(out, cache)``: the output, and whatever the backward
  pass will need;
- ``*_backward(dout, cache)`` takes the gradient of the loss with respect to ``out`` and
  returns the gradients with respect to the forward inputs, each with its input's shape.

The losses return ``(loss, dscores)`` at once. Work with NumPy arrays of any float dtype
and keep that dtype; never modify an input array in place (the checker compares every
input before and after each call).

Check your work at any time with

    convnet check --impl fc_layers.py
"""

import numpy as np  # noqa: F401  (you will need it)

__convnet_exercise__ = "fc_layers"


def affine_forward(x, w, b):
    """Forward pass of a fully connected (affine) layer.

    Each example x[i] of shape (d_1, ..., d_k) is flattened to a vector of D = d_1 * ... * d_k
    numbers and mapped to M numbers.

    Inputs:
    - x: array of shape (N, d_1, ..., d_k), a minibatch of N examples.
    - w: weights of shape (D, M).
    - b: biases of shape (M,).

    Returns a tuple of:
    - out: array of shape (N, M), out = x.reshape(N, D) @ w + b.
    - cache: (x, w, b), kept for affine_backward.
    """
    raise NotImplementedError(
        "affine_forward: flatten each example of x to a row, multiply by w, add b")


def affine_backward(dout, cache):
    """Backward pass of a fully connected (affine) layer.

    Inputs:
    - dout: upstream gradient of shape (N, M).
    - cache: the (x, w, b) saved by affine_forward, x of shape (N, d_1, ..., d_k),
      w of shape (D, M), b of shape (M,).

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, d_1, ..., d_k).
    - dw: gradient with respect to w, shape (D, M).
    - db: gradient with respect to b, shape (M,).
    """
    raise NotImplementedError(
        "affine_backward: dx = dout @ w.T (reshaped like x), dw = x_rows.T @ dout, "
        "db = dout summed over the batch")


def relu_forward(x):
    """Forward pass of a rectified linear unit, max(0, x) element by element.

    Inputs:
    - x: array of any shape.

    Returns a tuple of:
    - out: array of the same shape as x.
    - cache: x, kept for relu_backward.
    """
    raise NotImplementedError("relu_forward: out = max(0, x) element-wise, in a new array")


def relu_backward(dout, cache):
    """Backward pass of a rectified linear unit.

    Inputs:
    - dout: upstream gradient, any shape.
    - cache: the input x of relu_forward, same shape as dout.

    Returns:
    - dx: gradient with respect to x, same shape as dout (zero where x <= 0).
    """
    raise NotImplementedError(
        "relu_backward: pass dout through where x > 0, zero elsewhere (do not modify dout)")


def softmax_loss(scores, y):
    """Softmax (cross-entropy) loss and its gradient, averaged over the batch.

    loss = -(1/N) sum_i log( exp(scores[i, y[i]]) / sum_j exp(scores[i, j]) )

    Subtract each row's maximum before exponentiating: the loss does not change and
    exp no longer overflows for large scores.

    Inputs:
    - scores: array of shape (N, C), scores[i, c] is the score of class c for example i.
    - y: integer array of shape (N,), the label of each example, 0 <= y[i] < C.

    Returns a tuple of:
    - loss: the scalar loss (a Python or NumPy float).
    - dscores: gradient of the loss with respect to scores, shape (N, C).
    """
    raise NotImplementedError(
        "softmax_loss: mean cross-entropy of the row-wise softmax; "
        "dscores = (softmax - one_hot(y)) / N")


def svm_loss(scores, y):
    """Multiclass SVM (hinge) loss with margin 1 and its gradient, averaged over the batch.

    loss = (1/N) sum_i sum_{j != y[i]} max(0, scores[i, j] - scores[i, y[i]] + 1)

    Inputs:
    - scores: array of shape (N, C), scores[i, c] is the score of class c for example i.
    - y: integer array of shape (N,), the label of each example, 0 <= y[i] < C.

    Returns a tuple of:
    - loss: the scalar loss (a Python or NumPy float).
    - dscores: gradient of the loss with respect to scores, shape (N, C).
    """
    raise NotImplementedError(
        "svm_loss: sum the positive margins of the wrong classes; each positive margin "
        "adds +1/N to its class and -1/N to the correct class in dscores")
