"""A tiny hand-written model with the ``Sequential`` contract and numerical-gradient helpers,
shared by the input-gradient tests (so they test that package alone)."""

from __future__ import annotations

import numpy as np

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
