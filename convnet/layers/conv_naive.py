"""PLACEHOLDER: to be written (see docs/internals.md)."""


def conv_forward_naive(*args, **kwargs):
    raise NotImplementedError('conv_forward_naive')


def conv_backward_naive(*args, **kwargs):
    raise NotImplementedError('conv_backward_naive')

