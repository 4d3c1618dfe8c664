"""Batch normalisation and dropout.

Batch normalisation (Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift") normalises every feature with the
minibatch mean and variance in training, then scales by gamma and shifts by beta; at test
time it uses running averages of those statistics instead. Dropout (Srivastava et al.
2014) zeroes random units in training.

Conventions of this exercise (the checker follows them):

- The running statistics are updated as ``running = momentum * running + (1 - momentum) *
  batch_statistic``, with the *biased* batch variance (divide by N, ``x.var(axis=0)``),
  and stored back into ``bn_param``.
- Dropout's 'p' is the probability of DROPPING a unit (as in Keras and PyTorch). It is
  "inverted" dropout: kept units are divided by (1 - p) in training, so that test mode is
  the identity.

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the
gradients of the forward inputs, each with its input's shape. Keep the dtype of the
inputs, and never modify an input array in place (dicts such as bn_param may change).

Check your work at any time with

    convnet check --impl batchnorm_dropout.py
"""

import numpy as np  # noqa: F401  (you will need it)

__convnet_exercise__ = "batchnorm_dropout"


def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalisation over the batch axis.

    Train mode: mu and var are the mean and (biased) variance of x over the N examples;
    out = gamma * (x - mu) / sqrt(var + eps) + beta, and the running statistics are
    updated. Test mode: the same formula with running_mean and running_var in place of
    mu and var, and nothing is updated.

    Inputs:
    - x: data of shape (N, D).
    - gamma: scale, shape (D,).
    - beta: shift, shape (D,).
    - bn_param: dict with
      - 'mode': 'train' or 'test' (required).
      - 'eps': constant for numeric stability (default 1e-5).
      - 'momentum': decay of the running statistics (default 0.9).
      - 'running_mean', 'running_var': arrays of shape (D,); absent on the first call
        (start from zeros and ones), and written back into bn_param in train mode.

    Returns a tuple of:
    - out: array of shape (N, D).
    - cache: whatever batchnorm_backward needs.
    """
    raise NotImplementedError(
        "batchnorm_forward: normalise with the batch mean/variance in train mode (and update "
        "bn_param['running_mean'/'running_var']), with the running ones in test mode")


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalisation (both modes).

    In train mode mu and var depend on x, so every example's gradient involves the whole
    batch; in test mode the running statistics are constants.

    Inputs:
    - dout: upstream gradient of shape (N, D).
    - cache: what batchnorm_forward saved.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, D).
    - dgamma: gradient with respect to gamma, shape (D,).
    - dbeta: gradient with respect to beta, shape (D,).
    """
    raise NotImplementedError(
        "batchnorm_backward: dbeta = sum(dout), dgamma = sum(dout * x_hat); dx through "
        "x_hat, var and mu (train) or through x_hat alone (test)")


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of spatial batch normalisation: one mean and variance per channel,
    over the N images and all H x W positions.

    Inputs:
    - x: data of shape (N, C, H, W).
    - gamma: scale, shape (C,).
    - beta: shift, shape (C,).
    - bn_param: as in batchnorm_forward, with running statistics of shape (C,).

    Returns a tuple of:
    - out: array of shape (N, C, H, W).
    - cache: whatever spatial_batchnorm_backward needs.
    """
    raise NotImplementedError(
        "spatial_batchnorm_forward: move C last and flatten to (N*H*W, C), call "
        "batchnorm_forward, reshape back")


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batch normalisation.

    Inputs:
    - dout: upstream gradient of shape (N, C, H, W).
    - cache: what spatial_batchnorm_forward saved.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W).
    - dgamma: gradient with respect to gamma, shape (C,).
    - dbeta: gradient with respect to beta, shape (C,).
    """
    raise NotImplementedError(
        "spatial_batchnorm_backward: the same reshape as the forward pass around "
        "batchnorm_backward")


def dropout_forward(x, dropout_param):
    """Forward pass of inverted dropout.

    Inputs:
    - x: input data, array of any shape.
    - dropout_param: dict with
      - 'p': probability of DROPPING each unit, 0 <= p < 1.
      - 'mode': 'train' (drop and rescale) or 'test' (return x unchanged, as a copy).
      - 'seed' (optional): when given, draw the mask from np.random.default_rng(seed), so
        that two calls with the same seed drop the same units (gradient checks need this).

    Returns a tuple of:
    - out: array of the same shape as x: x * mask / (1 - p) in train mode, x in test mode.
    - cache: (dropout_param, mask), mask None in test mode.
    """
    raise NotImplementedError(
        "dropout_forward: in train mode keep each unit with probability 1 - p "
        "(rng.random(x.shape) >= p) and divide the kept ones by 1 - p")


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs:
    - dout: upstream gradient, same shape as the forward input.
    - cache: (dropout_param, mask) from dropout_forward.

    Returns:
    - dx: gradient with respect to x, same shape as dout: dout * mask / (1 - p) in train
      mode, dout in test mode.
    """
    raise NotImplementedError(
        "dropout_backward: apply the forward pass's mask and scale to dout (train), or "
        "return dout (test)")
