"""Transformation robustness (pad, random crop, scale, rotation), their exact adjoints, the
Fourier parameterisation's round trip, the reference-in-batch wrapper and the redirected ReLU
gradient. All gradient checks in float64."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.backend import InputSpace
from convnet.gradcheck import eval_numerical_gradient_array
from convnet.inputgrad.param import FourierParam, PixelParam, WithReference
from convnet.inputgrad.relu_redirect import redirected_relu, redirected_relu_backward
from convnet.inputgrad.transforms import (
    ROBUST_ANGLES,
    ROBUST_SCALES,
    Pad,
    RandomCrop,
    RandomRotate,
    RandomScale,
    Resampling,
    Resize,
    resize_bilinear,
    robustness_transforms,
    rotation_resampling,
    scale_resampling,
)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / max(1e-300, np.linalg.norm(a) + np.linalg.norm(b)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: rotation_resampling((9, 7), 23.0),
        lambda: rotation_resampling((8, 8), -10.0),
        lambda: scale_resampling((9, 7), 1.3),
        lambda: scale_resampling((10, 10), 0.9),
        lambda: Resampling((6, 5), (4, 8), np.array([[1.2, 0.3], [-0.4, 0.7]])),
    ],
)
def test_resampling_adjoint_is_the_transpose(rng, make):
    r = make()
    x = rng.standard_normal((2, 3, *r.in_size))
    g = rng.standard_normal((2, 3, *r.out_size))
    # <A x, g> = <x, A^T g> to float64 rounding.
    assert np.sum(r.apply(x) * g) == pytest.approx(np.sum(x * r.adjoint(g)), rel=1e-12, abs=1e-12)
    # The transpose built column by column from the forward map (independent of the scatter).
    n_in = r.in_size[0] * r.in_size[1]
    a = np.stack([r.apply(np.eye(n_in)[k].reshape(1, 1, *r.in_size)).ravel() for k in range(n_in)])
    np.testing.assert_allclose(r.adjoint(g[:1, :1]).ravel(), a @ g[0, 0].ravel(), atol=1e-12)


def test_resampling_geometry(rng):
    x = rng.standard_normal((1, 2, 8, 8))
    # 90 degrees on a square grid is exact: counter-clockwise as displayed, like np.rot90.
    np.testing.assert_allclose(rotation_resampling((8, 8), 90.0).apply(x),
                               np.rot90(x, 1, axes=(2, 3)), atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(rotation_resampling((8, 8), 0.0).apply(x), x, atol=1e-15)
    y = rng.standard_normal((1, 2, 9, 7))
    s = scale_resampling((9, 7), 1.3)
    assert s.out_size == (12, 9)
    np.testing.assert_allclose(s.apply(y), resize_bilinear(y, (12, 9)), atol=1e-12)
    with pytest.raises(ValueError, match="expected \\(N, C, 9, 7\\)"):
        s.apply(x)


def _fixed(t, x, seed):
    """The transform's output for a fixed draw (the same rng state every call)."""
    return t.before(x, np.random.default_rng(seed), 0)


@pytest.mark.parametrize(
    "t",
    [Pad(2, [0.1, -0.2, 0.3]), RandomCrop(3), RandomScale([0.8, 1.1, 1.25]),
     RandomRotate([-10.0, 7.0, 30.0]), Resize((7, 11))],  # fmt: skip
    ids=repr,
)
def test_transform_gradient_is_exact(rng, t):
    x = rng.standard_normal((2, 3, 9, 8))
    for seed in range(3):  # several random draws
        out, state = _fixed(t, x, seed)
        dout = rng.standard_normal(out.shape)
        num = eval_numerical_gradient_array(lambda v, s=seed: _fixed(t, v, s)[0], x.copy(), dout)
        got = t.undo_grad(dout, state)
        assert got.shape == x.shape
        assert _rel(got, num) < 1e-9  # float64 centred differences of a linear map


def test_pad_and_crop_values(rng):
    x = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    out, _ = Pad(2, [1.0, 2.0, 3.0]).before(x, rng, 0)
    assert out.shape == (1, 3, 8, 9) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, 2:6, 2:7], x)
    assert np.all(out[0, 1, 0] == 2.0) and np.all(out[0, 2, :, -1] == 3.0)
    c, st = RandomCrop(2).before(out, np.random.default_rng(0), 0)
    oy, ox = st[:2]
    assert c.shape == (1, 3, 6, 7)
    np.testing.assert_array_equal(c, out[:, :, oy : oy + 6, ox : ox + 7])
    with pytest.raises(ValueError, match="leaves nothing"):
        RandomCrop(4).before(x, rng, 0)
    with pytest.raises(ValueError, match="scalar or 3 values"):
        Pad(1, [0.0, 1.0]).before(x, rng, 0)


def test_robustness_transforms_chain_adjoint(rng):
    space = InputSpace.torch_imagenet()
    ts = robustness_transforms(space)
    assert [type(t).__name__ for t in ts] == ["Pad", "RandomCrop", "RandomScale",
                                              "RandomRotate", "RandomCrop"]  # fmt: skip
    assert len(ROBUST_SCALES) == 11 and ROBUST_SCALES[0] == pytest.approx(0.9)
    assert min(ROBUST_ANGLES) == -10 and ROBUST_ANGLES.count(0.0) == 6
    fixed = robustness_transforms(space, output_size=(16, 16))
    assert isinstance(fixed[-1], Resize) and fixed[-1].size == (16, 16)
    grey = space.to_model(np.full((1, 3, 1, 1), 127.5, np.float32))[0, :, 0, 0]
    np.testing.assert_allclose(ts[0].value, grey, rtol=1e-6)
    # The chain as the loop runs it: before in order, undo_grad in reverse; its gradient is
    # the transpose of the (affine) chain for every draw.
    x = rng.standard_normal((1, 3, 16, 16))
    for chain, seed in [(ts, 0), (ts, 1), (ts, 2), (fixed, 3)]:
        r = np.random.default_rng(seed)
        y, states = x, []
        for t in chain:
            y, st = t.before(y, r, 0)
            states.append(st)
        g = rng.standard_normal(y.shape)
        back = g
        for t, st in zip(reversed(chain), reversed(states), strict=True):
            back = t.undo_grad(back, st)
        dx = rng.standard_normal(x.shape)
        r = np.random.default_rng(seed)
        y2 = x + dx
        for t in chain:
            y2, _ = t.before(y2, r, 0)
        # Affine chain: <T(x + dx) - T(x), g> = <dx, T^T g> exactly.
        assert np.sum((y2 - y) * g) == pytest.approx(np.sum(dx * back), rel=1e-10)
    assert y.shape == (1, 3, 16, 16)  # the last chain ends at the fixed size


def test_fourier_param_round_trip_and_gradient(rng):
    f = FourierParam((2, 3, 10, 11), seed=1, std=0.3)
    p = f.to_pixels().astype(np.float64)
    g = FourierParam((2, 3, 10, 11), seed=5)
    g.set_pixels(p)
    np.testing.assert_allclose(g.to_pixels(), p, atol=1e-3)  # float32 pixels
    # From an arbitrary image (strictly inside (0, 255), where the sigmoid is invertible).
    img = rng.uniform(5, 250, (1, 3, 8, 8))
    h = FourierParam((1, 3, 8, 8), decorrelate=True)
    h.set_pixels(img)
    np.testing.assert_allclose(h.to_pixels(), img, atol=1e-3)
    # backward is the gradient of <to_pixels, dpix> (float64 via the cached sigmoid).
    q = FourierParam((1, 3, 6, 5), seed=2, std=0.5)
    dpix = rng.standard_normal((1, 3, 6, 5))

    def f_pix(params):
        q.params = params
        return 255.0 / (1 + np.exp(-np.einsum("pc,nchw->nphw", q.color, q._spatial())))

    params = q.params.copy()
    num = eval_numerical_gradient_array(f_pix, params.copy(), dpix, h=1e-6)
    q.params = params
    assert _rel(q.backward(dpix), num) < 1e-7
    with pytest.raises(ValueError, match="set_pixels: expected"):
        h.set_pixels(img[:, :, :4])


def test_with_reference_puts_the_image_first_and_drops_its_gradient(rng):
    inner = PixelParam((2, 3, 5, 5), init="random", seed=0)
    ref = rng.uniform(0, 255, (1, 3, 5, 5)).astype(np.float32)
    w = WithReference(inner, ref)
    px = w.to_pixels()
    assert px.shape == (3, 3, 5, 5)
    np.testing.assert_array_equal(px[0], ref[0])
    np.testing.assert_array_equal(px[1:], inner.to_pixels())
    d = rng.standard_normal(px.shape)
    np.testing.assert_allclose(w.backward(d), inner.backward(d[1:]))
    w.params = w.params + 1.0  # the optimiser writes through to the inner parameterisation
    assert inner.params.max() > 1.0
    w.clip()
    assert inner.params.max() <= 1.0
    with pytest.raises(ValueError, match="reference must be pixels"):
        WithReference(inner, ref[:, :, :4])


def test_redirected_relu_backward():
    x = np.array([[[-1.0, -2.0], [-0.5, -3.0]], [[1.0, -2.0], [-0.5, 2.0]]])
    dout = np.array([[[1.0, -1.0], [2.0, 0.5]], [[1.0, 1.0], [-1.0, 3.0]]])
    dx = redirected_relu_backward(dout, x)
    # Image 0 is off everywhere: the upstream gradient passes except where it pushes a
    # negative input down. Image 1 has live units: the ordinary ReLU gradient.
    np.testing.assert_array_equal(dx[0], [[1.0, 0.0], [2.0, 0.5]])
    np.testing.assert_array_equal(dx[1], [[1.0, 0.0], [0.0, 3.0]])


def test_redirected_relu_swaps_and_restores_the_backward():
    from convnet.backend import NumpyBackend
    from convnet.models import Sequential
    from convnet.models import modules as M

    # A conv whose output is negative on every non-negative input: its ReLU is always off.
    model = Sequential([M.Conv2D(3, 2, 1, name="conv"), M.ReLU(name="relu"),
                        M.GlobalAvgPool(name="gap")], input_shape=(3, 4, 4))  # fmt: skip
    model.params["conv/W"][...] = -1.0
    model.params["conv/b"][...] = -1.0
    b = NumpyBackend(model, InputSpace.unit_rgb())
    x = np.full((1, 3, 4, 4), 0.5, np.float32)
    relu = model.get_layer("relu")

    def grad():
        b.forward(x, ["gap"])
        return b.vjp({"gap": np.array([[1.0, 0.0]], np.float32)})

    assert not np.any(grad())  # the dead unit: no gradient at all
    with redirected_relu(b) as n:
        assert n == 1 and relu._fns[1] is redirected_relu_backward
        g = grad()
    # Redirected: d gap_0 / d relu = 1/16 passes the ReLU, then conv's weights (-1 each).
    np.testing.assert_allclose(g, np.full(x.shape, -1.0 / 16), rtol=1e-6)
    assert "_fns" not in vars(relu) and not np.any(grad())  # restored
    with pytest.raises(RuntimeError), redirected_relu(b):
        raise RuntimeError
    assert "_fns" not in vars(relu)
