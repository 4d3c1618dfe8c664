"""PLACEHOLDER: to be written (see docs/internals.md)."""


def conv_forward_numba(*args, **kwargs):
    raise NotImplementedError('conv_forward_numba')


def conv_backward_numba(*args, **kwargs):
    raise NotImplementedError('conv_backward_numba')

