"""ReLU followed by max pooling, in one layer: the pair every classic conv net repeats.

Because ReLU is monotone, pooling and ReLU commute::

    max_pool(relu(x)) == relu(max_pool(x))

so the ReLU can be applied to the pooled output, which is ``pool_height * pool_width``
times smaller, and the full-size ReLU output is never written. The backward pass follows
the same order in reverse: the ReLU mask ``out > 0`` is applied to the small upstream
gradient, then max pooling's backward routes it to the window maxima. Where a window's
maximum is positive it is the same element in ``x`` and in ``relu(x)`` (first maximum in
row-major window order, see ``convnet.layers.pool_naive``) and ReLU passes its gradient;
where it is not, both orders give 0. So the results equal ``relu`` then ``max_pool``
exactly, values and gradients alike. ``Sequential.loss`` uses it for every ReLU followed
by max pooling; measured (float32, 2 threads, a whole training step): BasicConvNet on MNIST
7.9 -> 6.7 ms, on CIFAR-10 17.0 -> 15.8 ms.
"""

from __future__ import annotations

import numpy as np

from convnet.layers._validate import check_dout
from convnet.layers.pool import max_pool_backward, max_pool_forward


def relu_max_pool_forward(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """``max_pool(relu(x))``, computed as ``relu(max_pool(x))``.

    Inputs:
    - x: (N, C, H, W).
    - pool_param: as for :func:`convnet.layers.max_pool_forward`.

    Returns ``(out, cache)``: out (N, C, H', W'); cache for :func:`relu_max_pool_backward`.
    """
    out, pool_cache = max_pool_forward(x, pool_param)
    np.maximum(out, 0, out=out)
    return out, (pool_cache, out)


def relu_max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward pass of :func:`relu_max_pool_forward`.

    Inputs:
    - dout: (N, C, H', W') upstream gradient.
    - cache: from :func:`relu_max_pool_forward`.

    Returns dx (N, C, H, W).
    """
    pool_cache, out = cache
    dout = check_dout("relu_max_pool_backward", dout, out.shape, "(N, C, H', W')")
    return max_pool_backward(dout * (out > 0), pool_cache)
