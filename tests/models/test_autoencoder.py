"""Autoencoders and the VAE: exact gradients, Keras/TF parity, real-data training, pictures."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data

from convnet.gradcheck import rel_error
from convnet.models.autoencoder import (
    VAE,
    Autoencoder,
    ConvAutoencoder,
    GaussianHead,
    knn_accuracy,
    load_autoencoder,
)


def _images(n: int, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Blurry blobs in [0, 1]: enough structure for the BCE to be far from its minimum."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.empty((n, 1, 28, 28), dtype=dtype)
    for i in range(n):
        cy, cx = rng.uniform(8, 20, size=2)
        out[i, 0] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(10, 40))
    return out


def _off_kinks(model, seed=0):
    """Random biases: with zero biases, blank pixels put pre-activations exactly on the ReLU
    kink, where a centred difference is meaningless."""
    rng = np.random.default_rng(seed)
    for k in model.params:
        if k.endswith("/b"):
            model.params[k] = 0.1 * rng.standard_normal(model.params[k].shape)
    return model


def _sparse_numeric_check(model, X, noise, num_per_param=1, h=1e-5, seed=0, keys=None):
    """Worst relative error of centred differences of the full loss against the analytic
    gradient, for a few random entries of every parameter array.

    A bias moves thousands of pre-activations at once, so one of them may sit within ``h`` of
    a ReLU kink, where a centred difference is wrong. Such entries are recognised because the
    differences with ``h`` and ``h / 10`` disagree; they are left out, and at most one in five
    entries may be.
    """
    def loss():
        return model.loss(X, X, noise=noise)[0] if noise is not None else model.loss(X, X)[0]

    def numeric(w, idx, step):
        old = w[idx]
        w[idx] = old + step
        lp = loss()
        w[idx] = old - step
        lm = loss()
        w[idx] = old
        return (lp - lm) / (2 * step)

    _, grads = model.loss(X, X, noise=noise) if noise is not None else model.loss(X, X)
    grads = {k: np.array(v) for k, v in grads.items()}
    rng = np.random.default_rng(seed)
    worst, kinks, total = 0.0, 0, 0
    params = model.params
    for key in list(params) if keys is None else keys:
        w = params[key]
        for _ in range(num_per_param):
            idx = tuple(rng.integers(s) for s in w.shape)
            num, ana = numeric(w, idx, h), grads[key][idx]
            total += 1
            if abs(num) + abs(ana) <= 1e-6:  # dead unit: both must be (almost) zero
                assert abs(num - ana) < 1e-8, key
                continue
            err = abs(num - ana) / (abs(num) + abs(ana))
            if err > 1e-6:
                fine = numeric(w, idx, h / 10)
                if abs(fine - num) > 1e-6 * (abs(fine) + abs(num)):
                    kinks += 1
                    continue
            worst = max(worst, err)
    assert kinks <= total // 5, f"{kinks} of {total} entries sit on kinks"
    return worst


def test_vae_full_loss_gradient_float64_fixed_noise():
    """Reconstruction + KL through the reparameterisation, every parameter array, float64."""
    model = _off_kinks(VAE(latent_dim=2, seed=3).astype(np.float64))
    X = _images(2)
    noise = np.random.default_rng(1).standard_normal((2, 2))
    # Tolerance 1e-6: the loss sums ~2400 BCE terms and ~400k weights feed it, so the centred
    # difference's round-off (~1e-16 * |loss| / h) is ~1e-9 of gradients of size ~1e-3.
    assert _sparse_numeric_check(model, X, noise) < 1e-6


def test_vae_gradient_wrt_mu_and_logvar_paths():
    """The KL and sampling gradients reach z_mean and z_log_var separately and exactly."""
    model = _off_kinks(VAE(latent_dim=3, beta=2.5, seed=0).astype(np.float64), seed=1)
    X = _images(2, seed=5)
    noise = np.random.default_rng(2).standard_normal((2, 3))
    _, grads = model.loss(X, X, noise=noise)
    for key in ("encoder/z/z_mean/W", "encoder/z/z_log_var/W"):
        assert np.abs(grads[key]).sum() > 0
    heads = [k for k in model.params if "/z/" in k] + ["encoder/conv1/W", "encoder/fc1/W"]
    assert _sparse_numeric_check(model, X, noise, seed=4, keys=heads) < 1e-6


def test_course_loss_weights_match_its_formula():
    model = VAE(latent_dim=2, course_loss=True, seed=0).astype(np.float64)
    X = _images(4, seed=2)
    noise = np.random.default_rng(3).standard_normal((4, 2))
    loss, _ = model.loss(X, X, noise=noise)
    stats = model.encoder.forward(X)
    mu, logvar = stats[:, :2], stats[:, 2:]
    z = mu + np.exp(logvar / 2) * noise
    logits = model.decoder.forward(z).reshape(4, -1)
    p = 1 / (1 + np.exp(-logits))
    x = X.reshape(4, -1)
    xent = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = -5e-4 * np.mean(1 + logvar - mu**2 - np.exp(logvar), axis=1)
    assert loss == pytest.approx(np.mean(xent + kl), rel=1e-9)


@pytest.mark.parametrize("cls", [Autoencoder, ConvAutoencoder])
def test_deterministic_autoencoders_gradients(cls):
    model = _off_kinks(cls(latent_dim=2, seed=1).astype(np.float64), seed=2)
    X = _images(2, seed=7)
    # Every parameter array of the decoder, the first and last of the encoder.
    keys = [k for k in model.params if k.startswith("decoder/")]
    keys += [k for k in model.params if k.startswith("encoder/")][:2]
    keys += [k for k in model.params if k.startswith("encoder/")][-2:]
    assert _sparse_numeric_check(model, X, None, keys=keys) < 1e-6


def test_encoder_and_decoder_stand_alone_and_errors():
    model = VAE(latent_dim=2, seed=0)
    X = _images(5, dtype=np.float32)
    z = model.encode(X)
    assert z.shape == (5, 2) and z.dtype == np.float32
    mu, logvar = model.encode_gaussian(X)
    np.testing.assert_array_equal(mu, z)
    assert logvar.shape == (5, 2)
    imgs = model.decode(np.zeros((4, 2)))
    assert imgs.shape == (4, 1, 28, 28) and 0 <= imgs.min() and imgs.max() <= 1
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model.encode(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="float"):
        model.encode(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="noise"):
        model.loss(X, X, noise=np.zeros((5, 3), np.float32))


def test_gaussian_head_errors_and_shapes():
    head = GaussianHead(8, 3, name="z")
    out = head.forward(np.ones((4, 8), np.float32))
    assert out.shape == (4, 6)
    assert sorted(head.params) == ["z_log_var/W", "z_log_var/b", "z_mean/W", "z_mean/b"]
    with pytest.raises(ValueError, match=r"z: expected input \(N, 8\)"):
        head.forward(np.ones((4, 7), np.float32))


@pytest.mark.parametrize("kind", ["dense", "conv", "vae"])
def test_save_load_roundtrip(tmp_path, kind):
    cls = {"dense": Autoencoder, "conv": ConvAutoencoder, "vae": VAE}[kind]
    model = cls(latent_dim=2, seed=4)
    for k in model.params:
        model.params[k] = model.params[k] + 0.01  # differ from a fresh model
    path = model.save(tmp_path / "m.npz")
    again = load_autoencoder(path)
    assert type(again) is cls
    X = _images(3, dtype=np.float32)
    np.testing.assert_array_equal(again.encode(X), model.encode(X))
    with np.load(path, allow_pickle=False) as f:  # no pickle anywhere
        assert "__config__" in f.files
    other = cls(latent_dim=3, seed=0)
    from convnet.errors import CheckpointError

    with pytest.raises(CheckpointError, match="shape"):
        other.load_weights(path)


def test_knn_accuracy_on_separable_codes():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 2)) * 20
    ytr = rng.integers(0, 10, 500)
    yte = rng.integers(0, 10, 200)
    tr = centres[ytr] + rng.normal(size=(500, 2))
    te = centres[yte] + rng.normal(size=(200, 2))
    assert knn_accuracy(tr, ytr, te, yte) > 0.97
    # Shuffled labels: chance level.
    assert knn_accuracy(tr, rng.permutation(ytr), te, yte) < 0.3


@pytest.mark.tf
def test_vae_loss_and_gradients_match_tensorflow():
    """The same VAE written with TF ops in NHWC, weights moved with the interop converters and
    the same noise: the loss and every parameter gradient agree (float64)."""
    tf = pytest.importorskip("tensorflow")
    from convnet.interop import keras as kx

    model = VAE(latent_dim=2, beta=1.0, seed=2).astype(np.float64)
    X = _images(3, seed=9)
    noise = np.random.default_rng(4).standard_normal((3, 2))
    loss, grads = model.loss(X, X, noise=noise)

    # Keras layouts. The decoder's dense layer feeds a Reshape to (64, 14, 14): in NHWC its
    # *columns* are permuted, which is the row permutation of the transposed matrix.
    def dec_cols(a):
        return kx.dense_weight_to_keras(np.atleast_2d(a).T, chw=(64, 14, 14)).T.reshape(a.shape)

    to_k, from_k = {}, {}
    for k in model.params:
        layer, kind = k.rsplit("/", 1)
        if layer.endswith(("conv1", "conv2", "conv3", "conv4", "logits")) and kind == "W":
            to_k[k], from_k[k] = kx.conv_weight_to_keras, kx.conv_weight_from_keras
        elif layer.endswith("deconv") and kind == "W":
            to_k[k] = kx.conv_transpose_weight_to_keras
            from_k[k] = kx.conv_transpose_weight_from_keras
        elif layer.endswith("fc1") and kind == "W":
            to_k[k] = lambda w: kx.dense_weight_to_keras(w, chw=(64, 14, 14))
            from_k[k] = lambda w: kx.dense_weight_from_keras(w, chw=(64, 14, 14))
        elif layer.endswith("dec_fc"):
            to_k[k] = dec_cols
            inv = np.argsort(dec_cols(np.arange(64 * 14 * 14)))
            from_k[k] = lambda a, inv=inv: a[..., inv]
        else:
            to_k[k] = from_k[k] = lambda a: a
    p = {k: tf.Variable(to_k[k](v)) for k, v in model.params.items()}
    pad1 = [[0, 0], [1, 1], [1, 1], [0, 0]]  # convnet's symmetric pad 1, not Keras 'same'

    def conv(h, key, stride=1):
        return tf.nn.conv2d(h, p[f"{key}/W"], strides=stride, padding=pad1) + p[f"{key}/b"]

    x = tf.constant(kx.nchw_to_nhwc(X))
    with tf.GradientTape() as tape:
        h = tf.nn.relu(conv(x, "encoder/conv1"))
        h = tf.nn.relu(conv(h, "encoder/conv2", stride=2))
        h = tf.nn.relu(conv(h, "encoder/conv3"))
        h = tf.nn.relu(conv(h, "encoder/conv4"))
        h = tf.reshape(h, [3, -1])  # NHWC flatten: fc1's rows were permuted to match
        h = tf.nn.relu(h @ p["encoder/fc1/W"] + p["encoder/fc1/b"])
        mu = h @ p["encoder/z/z_mean/W"] + p["encoder/z/z_mean/b"]
        logvar = h @ p["encoder/z/z_log_var/W"] + p["encoder/z/z_log_var/b"]
        z = mu + tf.exp(logvar / 2) * noise
        d = tf.nn.relu(z @ p["decoder/dec_fc/W"] + p["decoder/dec_fc/b"])
        d = tf.reshape(d, [3, 14, 14, 64])
        d = tf.nn.conv2d_transpose(d, p["decoder/deconv/W"], output_shape=[3, 28, 28, 32],
                                   strides=2, padding=pad1)
        d = tf.nn.relu(d + p["decoder/deconv/b"])
        logits = conv(d, "decoder/logits")
        bce = tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)) / 3
        kl = -0.5 * tf.reduce_sum(1 + logvar - mu**2 - tf.exp(logvar)) / 3
        tf_loss = bce + kl
    tf_grads = tape.gradient(tf_loss, p)
    assert rel_error(np.array(loss), np.array(float(tf_loss))) < 1e-10
    for k in model.params:
        assert rel_error(grads[k], from_k[k](tf_grads[k].numpy())) < 1e-8, k


def test_vae_training_on_real_mnist_lowers_the_elbo():
    """CI-sized real-data run: 2000 digits, one epoch of 63 Adam steps.

    Untrained, the loss is ~544 per image (784 ln 2: logits near 0); measured after such a run:
    loss ~250, test BCE ~233, 5-NN accuracy ~0.32 (chance 0.1). The bounds leave room for the
    seed, not for a wrong gradient.
    """
    need_data("mnist/train-images-idx3-ubyte.gz")
    from convnet.generative import evaluate, load_mnist_unit, train_autoencoder

    data = load_mnist_unit(subset=2000)
    model, _, history = train_autoencoder("vae", epochs=1, batch_size=32, verbose=False,
                                          data=data)
    losses = history["loss_history"]
    start, end = np.mean(losses[:3]), np.mean(losses[-5:])
    assert 450 < start < 650 and end < 0.55 * start, (start, end)
    small = {"X_train": data["X_train"][:1000], "y_train": data["y_train"][:1000],
             "X_test": data["X_test"][:500], "y_test": data["y_test"][:500]}
    res = evaluate(model, small, n_neighbours=1000)
    assert res["bce"] < 280 and res["knn_acc"] > 0.2, res


@pytest.mark.slow
def test_acceptance_vae_knn_and_conv_beats_dense(tmp_path):
    """Issue acceptance on the full training set: 3 epochs, batch 128, Adam 1e-3, beta 1."""
    need_data("mnist/train-images-idx3-ubyte.gz")
    from convnet.generative import evaluate, load_mnist_unit, train_autoencoder

    data = load_mnist_unit()
    vae, _, _ = train_autoencoder("vae", epochs=3, batch_size=128, data=data, verbose=False)
    r = evaluate(vae, data)
    assert r["knn_acc"] >= 0.50 and r["bce"] < 175, r
    dense, _, _ = train_autoencoder("dense", epochs=3, data=data, verbose=False)
    conv, _, _ = train_autoencoder("conv", epochs=3, data=data, verbose=False)
    assert evaluate(conv, data)["mse"] < evaluate(dense, data)["mse"]


def test_cli_train_then_sample(tmp_path, capsys):
    need_data("mnist/train-images-idx3-ubyte.gz")
    from convnet.cli import main

    out = tmp_path / "ae"
    rc = main(["autoencoder", "train", "--kind", "dense", "--latent", "2", "--epochs", "1",
               "--subset", "2000", "--batch-size", "100", "--grid", "5", "--quiet",
               "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "knn_acc" in printed and "mse" in printed
    for name in ("model.npz", "latent_scatter.png", "manifold_linear.png",
                 "manifold_quantiles.png", "reconstructions.png", "interpolation.png"):
        assert (out / name).stat().st_size > 0, name
    rc = main(["autoencoder", "sample", str(out / "model.npz"), "--grid", "4", "--quantiles",
               "--out", str(tmp_path / "grid.png")])
    assert rc == 0 and (tmp_path / "grid.png").stat().st_size > 0


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from convnet.cli import main

    monkeypatch.setenv("CONVNET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVNET_OFFLINE", "1")
    assert main(["autoencoder", "train", "--kind", "vae", "--quiet",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train-images-idx3-ubyte.gz" in err
    assert main(["autoencoder", "sample", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz" in capsys.readouterr().err
