"""PLACEHOLDER: to be written (see docs/internals.md)."""


def softmax(*args, **kwargs):
    raise NotImplementedError('softmax')


def softmax_loss(*args, **kwargs):
    raise NotImplementedError('softmax_loss')


def svm_loss(*args, **kwargs):
    raise NotImplementedError('svm_loss')


def mse_loss(*args, **kwargs):
    raise NotImplementedError('mse_loss')


def bce_loss(*args, **kwargs):
    raise NotImplementedError('bce_loss')


def bce_with_logits_loss(*args, **kwargs):
    raise NotImplementedError('bce_with_logits_loss')


def gaussian_kl(*args, **kwargs):
    raise NotImplementedError('gaussian_kl')

