"""Functional layers: ``out, cache = *_forward(...)``; ``grads = *_backward(dout, cache)``.

Data is NCHW, conv weights are ``(F, C, HH, WW)``. See docs/internals.md for the table.
"""

from convnet.layers.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from convnet.layers.affine import (
    affine_backward,
    affine_forward,
    flatten_backward,
    flatten_forward,
    reshape_backward,
    reshape_forward,
)
from convnet.layers.avgpool import (
    avg_pool_backward,
    avg_pool_forward,
)
from convnet.layers.batchnorm import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from convnet.layers.batchnorm_staged import batchnorm_backward_staged
from convnet.layers.conv import (
    CONV_BACKENDS,
    conv_backward,
    conv_forward,
    set_conv_backend,
)
from convnet.layers.conv_im2col import (
    col2im,
    conv_backward_im2col,
    conv_forward_im2col,
    im2col,
)
from convnet.layers.conv_naive import (
    conv_backward_naive,
    conv_forward_naive,
)
from convnet.layers.conv_numba import (
    conv_backward_numba,
    conv_forward_numba,
)
from convnet.layers.conv_transpose import (
    conv_transpose_backward,
    conv_transpose_forward,
)
from convnet.layers.conv_winograd import (
    conv_backward_winograd,
    conv_forward_winograd,
)
from convnet.layers.dropout import (
    dropout_backward,
    dropout_forward,
)
from convnet.layers.groupnorm import spatial_groupnorm_backward, spatial_groupnorm_forward
from convnet.layers.layernorm import (
    layernorm_backward,
    layernorm_forward,
)
from convnet.layers.losses import (
    bce_loss,
    bce_with_logits_loss,
    gaussian_kl,
    mse_loss,
    softmax,
    softmax_loss,
    svm_loss,
)
from convnet.layers.pool import (
    POOL_BACKENDS,
    max_pool_backward,
    max_pool_forward,
    set_pool_backend,
)
from convnet.layers.pool_im2col import (
    max_pool_backward_im2col,
    max_pool_forward_im2col,
)
from convnet.layers.pool_naive import (
    max_pool_backward_naive,
    max_pool_forward_naive,
)
from convnet.layers.pool_numba import (
    max_pool_backward_numba,
    max_pool_forward_numba,
)
from convnet.layers.relu_pool import relu_max_pool_backward, relu_max_pool_forward
from convnet.layers.shape_ops import (
    concat_backward,
    concat_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
)

__all__ = [
    "affine_forward",
    "affine_backward",
    "flatten_forward",
    "flatten_backward",
    "reshape_forward",
    "reshape_backward",
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "dropout_forward",
    "dropout_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "spatial_batchnorm_forward",
    "batchnorm_backward_staged",
    "layernorm_forward",
    "layernorm_backward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_batchnorm_backward",
    "concat_forward",
    "concat_backward",
    "global_avg_pool_forward",
    "global_avg_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "softmax",
    "softmax_loss",
    "svm_loss",
    "mse_loss",
    "bce_loss",
    "bce_with_logits_loss",
    "gaussian_kl",
    "conv_forward_naive",
    "conv_backward_naive",
    "conv_forward_im2col",
    "conv_backward_im2col",
    "im2col",
    "col2im",
    "conv_forward_numba",
    "conv_backward_numba",
    "conv_forward_winograd",
    "conv_backward_winograd",
    "conv_forward",
    "conv_backward",
    "set_conv_backend",
    "CONV_BACKENDS",
    "conv_transpose_forward",
    "conv_transpose_backward",
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "max_pool_forward_im2col",
    "max_pool_backward_im2col",
    "max_pool_forward_numba",
    "max_pool_backward_numba",
    "max_pool_forward",
    "max_pool_backward",
    "set_pool_backend",
    "relu_max_pool_forward",
    "relu_max_pool_backward",
    "POOL_BACKENDS",
]
