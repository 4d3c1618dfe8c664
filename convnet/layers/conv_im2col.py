"""PLACEHOLDER: to be written (see docs/internals.md)."""


def conv_forward_im2col(*args, **kwargs):
    raise NotImplementedError('conv_forward_im2col')


def conv_backward_im2col(*args, **kwargs):
    raise NotImplementedError('conv_backward_im2col')


def im2col(*args, **kwargs):
    raise NotImplementedError('im2col')


def col2im(*args, **kwargs):
    raise NotImplementedError('col2im')

