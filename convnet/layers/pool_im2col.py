"""PLACEHOLDER: to be written (see docs/internals.md)."""


def max_pool_forward_im2col(*args, **kwargs):
    raise NotImplementedError('max_pool_forward_im2col')


def max_pool_backward_im2col(*args, **kwargs):
    raise NotImplementedError('max_pool_backward_im2col')

