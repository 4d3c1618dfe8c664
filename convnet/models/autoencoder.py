"""Autoencoders and a variational autoencoder on MNIST.

The VAE is Kingma & Welling's ("Auto-Encoding Variational Bayes", ICLR 2014); the
convolutional encoder and decoder follow F. Chollet, *Deep Learning with Python* (Manning,
2017), section 8.4.

Each model has an ``encoder`` and a ``decoder``, both :class:`~convnet.models.Sequential`
models usable on their own (``encode`` a batch, ``decode`` latent vectors), and the
``params``/``grads``/``loss`` interface the :class:`~convnet.solver.Solver` trains, with the
input as its own target (``Solver(..., unsupervised=True)``).

* :class:`Autoencoder` -- dense 784 -> k -> 784 with a linear code and MSE loss (k = 2 to
  draw the code space, k = 100 for a good reconstruction);
* :class:`ConvAutoencoder` -- a deep autoencoder: conv 32 3x3, conv 64 3x3 stride 2,
  conv 64, conv 64, flatten, dense 32 relu, dense 2; decoder dense -> reshape -> transposed
  conv 32 3x3 stride 2 -> conv 1 3x3 -> sigmoid; binary cross-entropy loss;
* :class:`VAE` -- the same encoder ending in ``z_mean`` and ``z_log_var`` (a
  :class:`GaussianHead`), the reparameterisation ``z = mu + exp(log_var / 2) * eps`` and the
  same decoder; loss = binary cross-entropy + ``beta`` * KL.

Images are (N, 1, 28, 28) in [0, 1]. Keras' ``padding='same'`` at stride 2 pads 28 -> 14
asymmetrically (nothing before, one pixel after); convnet pads symmetrically (one pixel on each
side), which gives the same output size with the grid shifted by one pixel. The two are
different networks for the same weights, so the Keras twin of these models pads explicitly
(``ZeroPadding2D`` + ``'valid'``) -- see ``tests/models/test_autoencoder.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from convnet._io import atomic_save_npz
from convnet.errors import CheckpointError
from convnet.layers import bce_with_logits_loss, gaussian_kl, mse_loss, sigmoid_forward
from convnet.models.init import as_generator
from convnet.models.modules import (
    Conv2D,
    ConvTranspose2D,
    Dense,
    Flatten,
    Module,
    ReLU,
    Reshape,
    _ChildView,
    register_layer,
)
from convnet.models.sequential import Sequential

IMAGE_SHAPE = (1, 28, 28)

#: Glorot-uniform initialisation, as Keras, for every layer but the decoder's first.
INIT = "xavier"
#: The decoder's first layer maps the 2-D code to 12544 units. Glorot scales its weights by
#: both fans (std ~0.013), so the untrained decoder hardly depends on the code, and the KL term
#: can pull every posterior onto the prior before the decoder learns to use it (posterior
#: collapse: measured, the validation loss stuck at ~200 nats). He scaling (std 1 for fan-in 2)
#: makes the code matter from the first step.
DECODER_INPUT_INIT = "he"


@register_layer
class GaussianHead(Module):
    """Two dense heads on one input: ``z_mean`` and ``z_log_var``, concatenated.

    Input (N, D); output (N, 2L) = ``[z_mean | z_log_var]``. The parameters are named as in
    the Keras model (``z_mean/W``, ``z_mean/b``, ``z_log_var/W``, ``z_log_var/b``), so weights
    convert one to one.
    """

    default_prefix = "z"

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        name: str | None = None,
        dtype: Any = np.float32,
        init: str | float = "xavier",
        seed: int | np.random.Generator | None = None,
    ):
        super().__init__(name, dtype)
        self.in_features, self.latent_dim = int(in_features), int(latent_dim)
        self.init = init
        rng = as_generator(seed)
        self.children: dict[str, Module] = {
            head: Dense(in_features, latent_dim, name=head, dtype=dtype, init=init, seed=rng)
            for head in ("z_mean", "z_log_var")
        }
        self.params = _ChildView(self.children, "params")
        self.grads = _ChildView(self.children, "grads")
        self.buffers = _ChildView(self.children, "buffers")

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        x = self._as_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._bad_input(f"(N, {self.in_features})", x)
        self.cache = True
        return np.concatenate([c.forward(x, train) for c in self.children.values()], axis=1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_cache()
        L = self.latent_dim
        return (self.children["z_mean"].backward(dout[:, :L])
                + self.children["z_log_var"].backward(dout[:, L:]))

    def astype(self, dtype: Any) -> GaussianHead:
        for c in self.children.values():
            c.astype(dtype)
        self.dtype = np.dtype(dtype)
        return self

    def output_shape(self, input_shape: tuple) -> tuple:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(
                f"{self.label}: expected input (N, {self.in_features}), got (N, *{input_shape})"
            )
        return (2 * self.latent_dim,)

    def get_config(self) -> dict:
        init = self.init if isinstance(self.init, str) else float(self.init)
        return {**super().get_config(), "in_features": self.in_features,
                "latent_dim": self.latent_dim, "init": init}


def _conv_trunk(dtype, seed: int) -> list[Module]:
    """The encoder convolutions (Chollet 2017, section 8.4): 28x28x1 -> 14x14x64."""
    return [
        Conv2D(1, 32, 3, stride=1, pad=1, name="conv1", dtype=dtype, init=INIT, seed=seed),
        ReLU(name="relu1"),
        Conv2D(32, 64, 3, stride=2, pad=1, name="conv2", dtype=dtype, init=INIT, seed=seed + 1),
        ReLU(name="relu2"),
        Conv2D(64, 64, 3, stride=1, pad=1, name="conv3", dtype=dtype, init=INIT, seed=seed + 2),
        ReLU(name="relu3"),
        Conv2D(64, 64, 3, stride=1, pad=1, name="conv4", dtype=dtype, init=INIT, seed=seed + 3),
        ReLU(name="relu4"),
        Flatten(name="flatten"),
        Dense(64 * 14 * 14, 32, name="fc1", dtype=dtype, init=INIT, seed=seed + 4),
        ReLU(name="relu5"),
    ]


def _conv_decoder(latent_dim: int, dtype, seed: int) -> Sequential:
    """The decoder (Chollet 2017): dense -> 14x14x64 -> transposed conv 32 (stride 2) -> conv 1.

    The last layer outputs *logits*; :meth:`decode` applies the sigmoid. Training uses the
    logits with a numerically stable binary cross-entropy.
    """
    layers = [
        Dense(latent_dim, 64 * 14 * 14, name="dec_fc", dtype=dtype, init=DECODER_INPUT_INIT,
              seed=seed),
        ReLU(name="dec_relu1"),
        Reshape((64, 14, 14), name="reshape"),
        # (14 - 1) * 2 - 2 * 1 + 3 + 1 = 28, as Keras' Conv2DTranspose(padding='same').
        ConvTranspose2D(64, 32, 3, stride=2, pad=1, output_padding=1, name="deconv",
                        dtype=dtype, init=INIT, seed=seed + 1),
        ReLU(name="dec_relu2"),
        Conv2D(32, 1, 3, stride=1, pad=1, name="logits", dtype=dtype, init=INIT, seed=seed + 2),
    ]
    return Sequential(layers, input_shape=(latent_dim,), loss=None, name="decoder")


class _AutoencoderBase:
    """What the three models share: the joined parameters, save/load and the batch helpers."""

    kind: str = ""
    encoder: Sequential
    decoder: Sequential
    reg: float = 0.0

    # -- parameters -----------------------------------------------------------------------
    @property
    def params(self) -> MutableMapping:
        return _ChildView({"encoder": self.encoder, "decoder": self.decoder}, "params")

    @property
    def grads(self) -> MutableMapping:
        return _ChildView({"encoder": self.encoder, "decoder": self.decoder}, "grads")

    def astype(self, dtype) -> _AutoencoderBase:
        self.encoder.astype(dtype)
        self.decoder.astype(dtype)
        return self

    def _l2(self, grads: dict[str, np.ndarray]) -> float:
        """Add the L2 term on weights named W to ``grads``; return its value."""
        if not self.reg:
            return 0.0
        total = 0.0
        for k, w in self.params.items():
            if k.endswith("/W"):
                total += 0.5 * self.reg * float(np.sum(w * w))
                grads[k] = grads[k] + self.reg * w
        return total

    def eval_loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """The loss of ``X`` against target ``y`` without computing gradients."""
        return self.loss(X, y, backward=False)

    def _collect_grads(self) -> dict[str, np.ndarray]:
        return {k: np.array(v, copy=True) for k, v in self.grads.items()}

    # -- batch helpers --------------------------------------------------------------------
    @staticmethod
    def _batches(X: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
        for i in range(0, len(X), batch_size):
            yield X[i : i + batch_size]

    def _check_images(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 784:
            X = X.reshape(-1, *IMAGE_SHAPE)
        if X.ndim != 4 or X.shape[1:] != IMAGE_SHAPE:
            raise ValueError(
                f"{type(self).__name__}: expected images (N, 1, 28, 28) in [0, 1], got {X.shape}"
            )
        if not np.issubdtype(X.dtype, np.floating):
            raise ValueError(
                f"{type(self).__name__}: expected float images in [0, 1], got dtype {X.dtype}"
            )
        return X

    def encode(self, X: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Codes of images X (N, 1, 28, 28): (N, latent_dim). For the VAE: the means."""
        X = self._check_images(X)
        return np.concatenate([self._encode_batch(b) for b in self._batches(X, batch_size)])

    def decode(self, z: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Images (N, 1, 28, 28) decoded from codes z (N, latent_dim)."""
        z = np.asarray(z, dtype=self.encoder.dtype)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"{type(self).__name__}.decode: expected codes (N, {self.latent_dim}), "
                f"got {z.shape}"
            )
        return np.concatenate([self._decode_batch(b) for b in self._batches(z, batch_size)])

    def reconstruct(self, X: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """decode(encode(X)); for the VAE through the mean code (no sampling)."""
        return self.decode(self.encode(X, batch_size), batch_size)

    def _encode_batch(self, x: np.ndarray) -> np.ndarray:
        return self.encoder.forward(x)

    def _to_images(self, out: np.ndarray) -> np.ndarray:
        """Decoder output -> images in [0, 1]: the decoders end in logits."""
        return sigmoid_forward(out)[0]

    def _decode_batch(self, z: np.ndarray) -> np.ndarray:
        return self._to_images(self.decoder.forward(z))

    # -- files ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> Path:
        """Write the parameters and the configuration to ``path`` (.npz, atomically)."""
        arrays = {k: np.asarray(v) for k, v in self.params.items()}
        arrays["__config__"] = np.array(json.dumps({"kind": self.kind, **self.get_config()}))
        return atomic_save_npz(path, arrays)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load parameters saved by :meth:`save`; names and shapes must match exactly."""
        with np.load(path, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files if k != "__config__"}
        params = self.params
        missing = sorted(set(params) - set(stored))
        extra = sorted(set(stored) - set(params))
        wrong = sorted(
            f"{k}: file {stored[k].shape}, model {params[k].shape}"
            for k in set(params) & set(stored)
            if stored[k].shape != params[k].shape
        )
        if missing or extra or wrong:
            raise CheckpointError(
                f"{path}: does not match {type(self).__name__}: missing {missing}, "
                f"unexpected {extra}, shape mismatches {wrong}"
            )
        for k, v in stored.items():
            params[k] = v.astype(params[k].dtype)


class _DeterministicAutoencoder(_AutoencoderBase):
    """An encoder to a code and a decoder back, trained on a reconstruction loss.

    Subclasses build ``encoder``/``decoder`` in ``_build`` and say how the decoder's output
    is compared with the target (``_reconstruction_loss``) and turned into images
    (``_to_images``).
    """

    def __init__(self, latent_dim: int = 2, reg: float = 0.0, seed: int = 0,
                 dtype: Any = np.float32):
        self.latent_dim = latent_dim
        self.reg = reg
        self.seed = seed
        self._build(dtype)

    def _build(self, dtype: Any) -> None:
        raise NotImplementedError

    def _reconstruction_loss(self, out: np.ndarray, target: np.ndarray):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"latent_dim": self.latent_dim, "reg": self.reg, "seed": self.seed}

    def loss(self, X: np.ndarray, y: np.ndarray | None = None, backward: bool = True):
        """Reconstruction (N, 1, 28, 28) if ``y`` is None, else ``(loss, grads)``."""
        X = self._check_images(X)
        code = self.encoder.forward(X, train=y is not None)
        out = self.decoder.forward(code, train=y is not None)
        if y is None:
            return self._to_images(out)
        target = np.asarray(y, dtype=out.dtype).reshape(out.shape)
        loss, dout = self._reconstruction_loss(out, target)
        if not backward:
            return float(loss)
        self.encoder.backward(self.decoder.backward(dout), input_grad=False)
        grads = self._collect_grads()
        return loss + self._l2(grads), grads


class Autoencoder(_DeterministicAutoencoder):
    """Dense autoencoder 784 -> ``latent_dim`` (linear) -> 784 (linear), MSE loss.

    The simplest autoencoder: ``latent_dim=2`` for a picture of the code space,
    ``latent_dim=100`` for a good reconstruction. The loss is the mean squared error over
    all pixels.
    """

    kind = "dense"

    def _build(self, dtype: Any) -> None:
        L, seed = self.latent_dim, self.seed
        self.encoder = Sequential(
            [Flatten(name="flatten"),
             Dense(784, L, name="code", dtype=dtype, init="xavier", seed=seed)],
            input_shape=IMAGE_SHAPE, loss=None, name="encoder",
        )
        self.decoder = Sequential(
            [Dense(L, 784, name="out", dtype=dtype, init="xavier", seed=seed + 1),
             Reshape(IMAGE_SHAPE, name="reshape")],
            input_shape=(L,), loss=None, name="decoder",
        )

    def _to_images(self, out: np.ndarray) -> np.ndarray:
        return out  # a linear decoder: its output is the image

    def _reconstruction_loss(self, out: np.ndarray, target: np.ndarray):
        return mse_loss(out, target)


class ConvAutoencoder(_DeterministicAutoencoder):
    """A deep convolutional autoencoder with a 2-D code (the VAE's encoder and decoder).

    The loss is binary cross-entropy on [0, 1] pixels (from the decoder's logits), summed over
    the 784 pixels and averaged over the batch.
    """

    kind = "conv"

    def _build(self, dtype: Any) -> None:
        self.encoder = Sequential(
            _conv_trunk(dtype, self.seed)
            + [Dense(32, self.latent_dim, name="code", dtype=dtype, init="xavier",
                     seed=self.seed + 5)],
            input_shape=IMAGE_SHAPE, loss=None, name="encoder",
        )
        self.decoder = _conv_decoder(self.latent_dim, dtype, self.seed + 10)

    def _reconstruction_loss(self, out: np.ndarray, target: np.ndarray):
        return bce_with_logits_loss(out, target, reduction="batchmean")


class VAE(_AutoencoderBase):
    """Variational autoencoder with the convolutional encoder and decoder of
    F. Chollet, *Deep Learning with Python* (Manning, 2017), section 8.4.

    The encoder ends in ``z_mean`` and ``z_log_var`` (both (N, L)); the code is sampled with
    the reparameterisation ``z = mu + exp(log_var / 2) * eps``, ``eps ~ N(0, I)`` drawn from a
    seeded generator. (Chollet's listing writes ``exp(log_var)``, which makes ``log_var`` the
    log of the standard deviation while its KL term treats it as the log variance; we use the
    standard form, consistent with the KL term.)

    Loss per image, averaged over the batch::

        BCE(x, decoder(z)) summed over the 784 pixels  +  beta * KL(N(mu, sigma^2) || N(0, I))

    ``beta=1`` is the ELBO. ``course_loss=True`` reproduces Chollet's weighting instead:
    BCE *averaged* over the pixels plus ``5e-4`` times the KL integrand averaged over the latent
    dimensions, i.e. ``(BCE_sum + 784 * 5e-4 * 2 / L * KL) / 784``.
    """

    kind = "vae"

    def __init__(self, latent_dim: int = 2, beta: float = 1.0, course_loss: bool = False,
                 reg: float = 0.0, seed: int = 0, dtype: Any = np.float32):
        self.latent_dim = latent_dim
        self.beta = float(beta)
        self.course_loss = bool(course_loss)
        self.reg = reg
        self.seed = seed
        self.rng = np.random.default_rng(seed + 1000)
        self.encoder = Sequential(
            _conv_trunk(dtype, seed)
            + [GaussianHead(32, latent_dim, name="z", dtype=dtype, seed=seed + 5)],
            input_shape=IMAGE_SHAPE, loss=None, name="encoder",
        )
        self.decoder = _conv_decoder(latent_dim, dtype, seed + 10)
        self.last_terms: dict[str, float] = {}

    def get_config(self) -> dict:
        return {"latent_dim": self.latent_dim, "beta": self.beta,
                "course_loss": self.course_loss, "reg": self.reg, "seed": self.seed}

    def eval_loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """The loss without gradients, with ``eps`` from a fixed generator: validation losses
        of different epochs compare like with like, and the training noise stream is untouched.
        """
        X = self._check_images(X)
        noise = np.random.default_rng(0).standard_normal((len(X), self.latent_dim))
        return self.loss(X, y, noise=noise.astype(self.encoder.dtype), backward=False)

    def encode_gaussian(self, X: np.ndarray, batch_size: int = 500):
        """``(z_mean, z_log_var)``, each (N, L), of images X (N, 1, 28, 28)."""
        X = self._check_images(X)
        out = np.concatenate([self.encoder.forward(b) for b in self._batches(X, batch_size)])
        return out[:, : self.latent_dim], out[:, self.latent_dim :]

    def _encode_batch(self, x: np.ndarray) -> np.ndarray:
        return self.encoder.forward(x)[:, : self.latent_dim]

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` new images (n, 1, 28, 28) decoded from codes drawn from the prior N(0, I)."""
        rng = np.random.default_rng(seed)
        return self.decode(rng.standard_normal((n, self.latent_dim)))

    def _weights(self) -> tuple[float, float, str]:
        """(reconstruction weight, KL weight, BCE reduction) of the chosen loss."""
        if self.course_loss:
            return 1.0 / 784.0, 5e-4 * 2.0 / self.latent_dim, "batchmean"
        return 1.0, self.beta, "batchmean"

    def loss(self, X: np.ndarray, y: np.ndarray | None = None, noise: np.ndarray | None = None,
             backward: bool = True):
        """Reconstruction through the mean code if ``y`` is None, else ``(loss, grads)``.

        ``noise`` (N, L) fixes ``eps`` (for gradient checks); otherwise it is drawn from the
        model's seeded generator. The terms of the last loss are in ``self.last_terms``
        (``bce`` per image, ``kl`` per image, ``loss``).
        """
        X = self._check_images(X)
        L = self.latent_dim
        train = y is not None
        stats = self.encoder.forward(X, train=train)
        mu, logvar = stats[:, :L], stats[:, L:]
        if y is None:
            return self._to_images(self.decoder.forward(mu))
        if noise is None:
            noise = self.rng.standard_normal(mu.shape).astype(mu.dtype)
        elif noise.shape != mu.shape:
            raise ValueError(f"VAE.loss: noise must be {mu.shape}, got {noise.shape}")
        sigma = np.exp(0.5 * logvar)
        z = mu + sigma * noise
        logits = self.decoder.forward(z, train=True)
        target = np.asarray(y, dtype=logits.dtype).reshape(logits.shape)
        bce, dlogits = bce_with_logits_loss(logits, target, reduction="batchmean")
        kl, dmu_kl, dlogvar_kl = gaussian_kl(mu, logvar, reduction="batchmean")
        w_rec, w_kl, _ = self._weights()
        loss = w_rec * bce + w_kl * kl
        if not backward:
            return float(loss)

        dz = self.decoder.backward(w_rec * dlogits)
        # z = mu + exp(logvar / 2) * eps: dz/dmu = 1, dz/dlogvar = eps * exp(logvar / 2) / 2.
        dmu = dz + w_kl * dmu_kl
        dlogvar = dz * noise * 0.5 * sigma + w_kl * dlogvar_kl
        self.encoder.backward(np.concatenate([dmu, dlogvar], axis=1), input_grad=False)
        grads = self._collect_grads()
        loss = float(loss) + self._l2(grads)
        self.last_terms = {"bce": float(bce), "kl": float(kl), "loss": loss}
        return loss, grads

    def elbo_terms(self, X: np.ndarray, batch_size: int = 500, seed: int = 0) -> dict[str, float]:
        """Per-image BCE, KL and negative ELBO (BCE + KL) on X, one sample of eps per image."""
        X = self._check_images(X)
        rng = np.random.default_rng(seed)
        bce_sum = kl_sum = 0.0
        for xb in self._batches(X, batch_size):
            mu, logvar = self.encode_gaussian(xb, batch_size)
            z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape).astype(mu.dtype)
            logits = self.decoder.forward(z)
            bce, _ = bce_with_logits_loss(logits, xb.astype(logits.dtype), reduction="sum")
            kl, _, _ = gaussian_kl(mu, logvar, reduction="sum")
            bce_sum += float(bce)
            kl_sum += float(kl)
        n = len(X)
        return {"bce": bce_sum / n, "kl": kl_sum / n, "neg_elbo": (bce_sum + kl_sum) / n}


MODELS = {"dense": Autoencoder, "conv": ConvAutoencoder, "vae": VAE}


def build_autoencoder(kind: str, **kwargs) -> _AutoencoderBase:
    """``'dense'`` | ``'conv'`` | ``'vae'`` -> a new model."""
    if kind not in MODELS:
        raise ValueError(f"unknown autoencoder kind {kind!r}; choose from {sorted(MODELS)}")
    return MODELS[kind](**kwargs)


def load_autoencoder(path: str | os.PathLike) -> _AutoencoderBase:
    """Rebuild a model saved by ``save`` and load its weights."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    with np.load(path, allow_pickle=False) as f:
        if "__config__" not in f.files:
            raise CheckpointError(f"{path}: not an autoencoder file (no __config__ entry)")
        config = json.loads(str(f["__config__"]))
    kind = config.pop("kind", None)
    if kind not in MODELS:
        raise CheckpointError(f"{path}: unknown autoencoder kind {kind!r}")
    model = MODELS[kind](**config)
    model.load_weights(path)
    return model


def knn_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                 test_labels: np.ndarray, k: int = 5, batch_size: int = 1000) -> float:
    """Accuracy of a ``k``-nearest-neighbour vote (Euclidean) in code space."""
    train_codes = np.asarray(train_codes, dtype=np.float64)
    test_codes = np.asarray(test_codes, dtype=np.float64)
    sq_train = np.sum(train_codes**2, axis=1)
    correct = 0
    for i in range(0, len(test_codes), batch_size):
        q = test_codes[i : i + batch_size]
        d = np.sum(q**2, axis=1)[:, None] - 2 * q @ train_codes.T + sq_train[None, :]
        nn = np.argpartition(d, k, axis=1)[:, :k]
        votes = train_labels[nn]
        pred = np.array([np.bincount(v, minlength=10).argmax() for v in votes])
        correct += int(np.sum(pred == test_labels[i : i + batch_size]))
    return correct / len(test_codes)
