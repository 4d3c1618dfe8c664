"""Training skips the input gradient of the first layer; the parameter gradients stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.layers import CONV_BACKENDS, conv_backward, conv_forward
from convnet.layers.conv import SPECIALISED_BACKENDS, conv_backward_params
from convnet.models import BasicConvNet, MnistConvNet
from convnet.models.autoencoder import VAE, ConvAutoencoder


@pytest.mark.parametrize("backend", sorted({*CONV_BACKENDS, *SPECIALISED_BACKENDS} - {"naive"}))
def test_conv_backward_params_equals_the_full_backward(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 9, 9))
    w = rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    fwd = {**CONV_BACKENDS, **SPECIALISED_BACKENDS}[backend][0]
    out, cache = fwd(x, w, b, {"stride": 1, "pad": 1})
    dout = rng.standard_normal(out.shape)
    _, dw, db = conv_backward(dout, cache)
    dw2, db2 = conv_backward_params(dout, cache)
    np.testing.assert_allclose(dw2, dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db2, db, rtol=1e-12, atol=1e-12)


def test_conv_backward_params_checks_dout():
    x = np.zeros((2, 1, 5, 5), np.float32)
    _, cache = conv_forward(x, np.zeros((2, 1, 3, 3), np.float32), np.zeros(2, np.float32),
                            {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="dout"):
        conv_backward_params(np.zeros((2, 2, 4, 4), np.float32), cache)


@pytest.mark.parametrize("make", [
    lambda: BasicConvNet((3, 12, 12), num_filters=4, filter_size=5, hidden_dim=8,
                         dtype=np.float64),
    lambda: MnistConvNet(dtype=np.float64),
])
def test_model_loss_grads_equal_the_full_backward(make):
    model = make()
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, *model.input_shape))
    y = np.array([0, 1, 2, 3])
    _, grads = model.loss(X, y)  # first layer: parameter gradients only
    scores = model.forward(X, train=True)
    from convnet.layers import softmax_loss

    _, dscores = softmax_loss(scores, y)
    dx = model.backward(dscores)  # the full backward, input gradient included
    assert dx.shape == X.shape
    for k, g in model.grads.items():
        np.testing.assert_allclose(grads[k], g, rtol=1e-10, atol=1e-12, err_msg=k)
    assert model.backward(dscores, input_grad=False) is None


@pytest.mark.parametrize("cls", [ConvAutoencoder, VAE])
def test_autoencoder_grads_match_a_gradient_check(cls):
    """One parameter of the encoder's first layer against a central difference."""
    model = cls(latent_dim=2, dtype=np.float64)
    X = np.random.default_rng(2).random((2, 1, 28, 28))
    noise = {"noise": np.zeros((2, 2))} if cls is VAE else {}
    _, grads = model.loss(X, X, **noise)
    W = model.params["encoder/conv1/W"]
    idx = (3, 0, 1, 2)
    h = 1e-6
    old = W[idx]
    W[idx] = old + h
    lp = model.loss(X, X, backward=False, **noise)
    W[idx] = old - h
    lm = model.loss(X, X, backward=False, **noise)
    W[idx] = old
    num = (lp - lm) / (2 * h)
    assert abs(grads["encoder/conv1/W"][idx] - num) <= 1e-5 * max(1.0, abs(num))
