"""PLACEHOLDER: to be written (see docs/internals.md)."""


def conv_transpose_forward(*args, **kwargs):
    raise NotImplementedError('conv_transpose_forward')


def conv_transpose_backward(*args, **kwargs):
    raise NotImplementedError('conv_transpose_backward')

