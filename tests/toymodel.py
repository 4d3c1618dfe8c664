"""Models shared by the input-gradient tests.

* ``ToyModel``: a tiny hand-written model with the ``Sequential`` contract, and numerical-
  gradient helpers (so the objectives and backends are tested without the layers package).
* ``small_net`` / ``make_backend``: a small real network (conv-relu-pool-conv-relu-global-
  average-pool-dense, float32, about 700 parameters) behind the NumPy backend, or its
  ``to_keras`` twin behind the TF backend. It accepts any image size, like the pretrained
  models the methods are meant for, so octaves and tiles work on both backends; its input
  space (torch's ImageNet preprocessing) has per-channel scales, so every pixel <-> model
  conversion is exercised.
"""

from __future__ import annotations

import numpy as np

from convnet.backend import InputSpace, NumpyBackend

TOL = 1e-7


def num_grad(f, x, h=1e-5):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def rel_error(a, b):
    """Norm-wise relative error (element-wise ratios blow up on near-zero entries)."""
    return float(np.linalg.norm(a - b) / max(1e-12, np.linalg.norm(a) + np.linalg.norm(b)))


class ToyModel:
    """conv-ish 'c1' (N, 2, H, W) = tanh(1x1 mix of x); 'pool' (N, 2) mean; 'out' (N, 4)."""

    def __init__(self, c=3, h=5, w=6, seed=0):
        r = np.random.default_rng(seed)
        self.A = r.standard_normal((2, c))
        self.B = r.standard_normal((2, 4))
        self.input_shape = (c, h, w)
        self.layer_names = ["c1", "pool", "out"]
        self.name = "toy"

    def get_layer(self, name):
        return {"c1": object(), "pool": GlobalAvgPool(), "out": object()}[name]

    def forward_layers(self, x, names, train=False):
        self.x = x
        self.z = np.einsum("fc,nchw->nfhw", self.A, x)
        self.c1 = np.tanh(self.z)
        self.pool = self.c1.mean(axis=(2, 3))
        self.out = self.pool @ self.B
        return {n: getattr(self, n) for n in names}

    def backward_layers(self, up):
        dpool = up.get("out", 0) @ self.B.T if "out" in up else 0
        dpool = dpool + up.get("pool", 0)
        hw = self.c1.shape[2] * self.c1.shape[3]
        dc1 = (
            np.broadcast_to(np.asarray(dpool)[..., None, None] / hw, self.c1.shape)
            if np.ndim(dpool)
            else np.zeros_like(self.c1)
        )
        dc1 = dc1 + up.get("c1", 0)
        dz = dc1 * (1 - self.c1**2)
        return np.einsum("fc,nfhw->nchw", self.A, dz)


class GlobalAvgPool:  # the backend infers "any image size" from this class name
    pass


SIZE = 24  # image side used by the tests
CLASSES = 5


def small_net():
    """The NumPy model: (N, 3, H, W) -> (N, 5) logits, deterministic weights."""
    from convnet.models import Sequential
    from convnet.models import modules as M

    model = Sequential(
        [
            M.Conv2D(3, 6, 3, pad=1, name="conv1", seed=1),
            M.ReLU(name="relu1"),
            M.MaxPool2D(2, name="pool1"),
            M.Conv2D(6, 8, 3, pad=1, name="conv2", seed=2),
            M.ReLU(name="relu2"),
            M.GlobalAvgPool(name="gap"),
            M.Dense(8, CLASSES, name="fc", seed=3),
        ],
        input_shape=(3, SIZE, SIZE),
    )
    # Small positive biases keep most ReLUs on for images near mid grey.
    rng = np.random.default_rng(4)
    for k in ("conv1/b", "conv2/b"):
        model.params[k] = rng.uniform(0.05, 0.2, model.params[k].shape).astype(np.float32)
    return model


def make_backend(kind: str, model, fixed_size: bool = False):
    """The model behind the NumPy backend, or its ``to_keras`` twin behind the TF backend."""
    space = InputSpace.torch_imagenet()
    if kind == "numpy":
        return NumpyBackend(model, space, fixed_size=fixed_size)
    from convnet.interop.keras import to_keras
    from convnet.interop.tf_backend import TFBackend

    return TFBackend(to_keras(model), space, fixed_size=fixed_size)
