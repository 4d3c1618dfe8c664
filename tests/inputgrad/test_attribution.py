"""Attribution methods on both backends: Grad-CAM(++), guided backpropagation, guided
Grad-CAM, integrated gradients, SmoothGrad, occlusion.

Numerical references: finite differences of the class score w.r.t. a feature map, a guided
backward pass written out by hand, the completeness axiom of integrated gradients, the mean
over seeded noisy copies, one occluded image at a time. The TF cases run the same functions
on the Keras twin (``to_keras``) of the NumPy model and must agree with it. Sanity checks on
the real SqueezeNet: the Grad-CAM of the labrador lies on the dog, and cascading
randomisation (Adebayo et al. 2018) changes the map.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data

from convnet.backend import InputSpace, NumpyBackend
from convnet.inputgrad import attribution as at
from convnet.inputgrad.occlusion import occlusion, patch_positions
from convnet.inputgrad.saliency import input_gradient_pixels
from convnet.models import Conv2D, Dense, Fire, GlobalAvgPool, MaxPool2D, ReLU, Sequential

SPACE = InputSpace("BGR", 1.0 / 255.0, (0.4, 0.5, 0.6), (0.5, 0.25, 0.5), name="test")


def small_model(seed: int = 0) -> Sequential:
    """conv-relu-pool-conv-relu-gap-dense in float64, with non-zero biases."""
    r = np.random.default_rng(seed)
    d = np.float64
    model = Sequential(
        [
            Conv2D(3, 4, 3, pad=1, name="conv1", dtype=d, seed=r), ReLU(name="relu1"),
            MaxPool2D(2, 2, name="pool1"),
            Conv2D(4, 6, 3, pad=1, name="conv2", dtype=d, seed=r), ReLU(name="relu2"),
            GlobalAvgPool(name="gap"), Dense(6, 5, name="fc", dtype=d, seed=r),
        ],
        input_shape=(3, 10, 10), name="small",
    )  # fmt: skip
    for k in ("conv1/b", "conv2/b", "fc/b"):
        model.params[k] = r.normal(0.0, 0.3, model.params[k].shape)
    return model


def image(n: int = 2, seed: int = 1, hw: tuple[int, int] = (10, 10)) -> np.ndarray:
    pix = np.random.default_rng(seed).uniform(0, 255, (n, 3, *hw))
    return SPACE.to_model(pix)


@pytest.fixture(scope="module")
def np_backend():
    return NumpyBackend(small_model(), SPACE)


@pytest.fixture(scope="module")
def tf_backend(np_backend):
    from convnet.interop.keras import to_keras
    from convnet.interop.tf_backend import TFBackend

    return TFBackend(to_keras(np_backend.model), SPACE)


BOTH = ["numpy", pytest.param("tf", marks=pytest.mark.tf)]


@pytest.fixture(params=BOTH)
def backend(request, np_backend):
    if request.param == "numpy":
        return np_backend
    return request.getfixturevalue("tf_backend")


def tail_score(model: Sequential, layer: str, a: np.ndarray, cls: np.ndarray) -> float:
    """Sum over images of the class score, computed from layer ``layer``'s activation on."""
    names = model.layer_names
    for name in names[names.index(layer) + 1 :]:
        a = model.get_layer(name).forward(a)
    return float(a[np.arange(a.shape[0]), cls].sum())


def fd_layer_gradient(model: Sequential, x, layer: str, cls, h: float = 1e-6):
    acts = model.forward_layers(x, [layer])[layer].copy()
    g = np.zeros_like(acts)
    for i in np.ndindex(acts.shape):
        old = acts[i]
        acts[i] = old + h
        fp = tail_score(model, layer, acts.copy(), cls)
        acts[i] = old - h
        fm = tail_score(model, layer, acts.copy(), cls)
        acts[i] = old
        g[i] = (fp - fm) / (2 * h)
    return acts, g


# ---------------------------------------------------------------------------------- Grad-CAM
@pytest.mark.parametrize("layer", ["relu2", "pool1"])
def test_layer_gradient_matches_finite_differences(backend, np_backend, layer):
    x = image()
    cls = np.array([1, 3])
    A_ref, g_ref = fd_layer_gradient(np_backend.model, x, layer, cls)
    up = np.zeros((2, 5))
    up[[0, 1], cls] = 1.0
    A, g = at.layer_gradient(backend, x, layer, up)
    np.testing.assert_allclose(A, A_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-6, atol=1e-9)
    assert np.abs(g_ref).max() > 1e-3  # the gradient is not trivially zero


def test_grad_cam_weights_are_mean_fd_gradient(backend, np_backend):
    x = image()
    cls = np.array([0, 2])
    _, g = fd_layer_gradient(np_backend.model, x, "relu2", cls)
    A, w = at.grad_cam_weights(backend, x, cls, "relu2")
    np.testing.assert_allclose(w, g.mean(axis=(2, 3)), rtol=1e-6, atol=1e-10)
    # Grad-CAM++ closed form, written out from the paper on the finite-difference gradient.
    s = A.sum(axis=(2, 3))
    wpp = np.zeros_like(w)
    for n, k, i, j in np.ndindex(g.shape):
        gg = g[n, k, i, j]
        den = 2 * gg**2 + s[n, k] * gg**3
        if den != 0:
            wpp[n, k] += gg**2 / den * max(gg, 0.0)
    _, w2 = at.grad_cam_weights(backend, x, cls, "relu2", plus=True)
    np.testing.assert_allclose(w2, wpp, rtol=1e-5, atol=1e-10)


def test_grad_cam_map_without_upsampling(backend):
    # conv1's map has the image's size, so the heatmap is relu(sum_k w_k A_k) / max exactly.
    x = image()
    A, w = at.grad_cam_weights(backend, x, 4, "relu1")
    cam = np.maximum((w[:, :, None, None] * A).sum(axis=1), 0)
    hm = at.grad_cam(backend, x, 4, "relu1")
    assert cam.max() > 0
    np.testing.assert_allclose(hm, cam / cam.max(axis=(1, 2), keepdims=True), atol=1e-12)
    hm2 = at.grad_cam(backend, x, 4, "relu2")  # 5x5 map upsampled to 10x10
    assert hm2.shape == (2, 10, 10) and hm2.min() >= 0 and np.allclose(hm2.max(axis=(1, 2)), 1)


def test_grad_cam_default_layer_and_errors(np_backend):
    x = image()
    assert at.default_cam_layer(np_backend, x) == "relu2"
    with pytest.raises(ValueError, match="feature-map layer"):
        at.grad_cam(np_backend, x, 0, "gap")
    with pytest.raises(ValueError, match="before the output"):
        at.layer_gradient(np_backend, x, "fc", np.zeros((2, 5)))


@pytest.mark.tf
def test_grad_cam_backends_agree(np_backend, tf_backend):
    x = image()
    for plus in (False, True):
        a = at.grad_cam(np_backend, x, [1, 2], "relu2", plus=plus)
        b = at.grad_cam(tf_backend, x, [1, 2], "relu2", plus=plus)
        np.testing.assert_allclose(a, b, atol=1e-9)


# ------------------------------------------------------------------------- guided backprop
def tiny_model() -> Sequential:
    """1x1 convs (a per-pixel MLP) with two ReLUs: the guided pass is easy to write out."""
    r = np.random.default_rng(3)
    d = np.float64
    model = Sequential(
        [Conv2D(3, 5, 1, name="c1", dtype=d, seed=r), ReLU(name="r1"),
         Conv2D(5, 4, 1, name="c2", dtype=d, seed=r), ReLU(name="r2"),
         GlobalAvgPool(name="gap"), Dense(4, 3, name="fc", dtype=d, seed=r)],
        input_shape=(3, 2, 3), name="tiny",
    )  # fmt: skip
    for k in ("c1/b", "c2/b", "fc/b"):
        model.params[k] = r.normal(0.0, 0.5, model.params[k].shape)
    return model


def hand_guided(model: Sequential, x: np.ndarray, c: int) -> np.ndarray:
    p = model.params
    W1, b1 = p["c1/W"][:, :, 0, 0], p["c1/b"]
    W2, b2 = p["c2/W"][:, :, 0, 0], p["c2/b"]
    z1 = np.einsum("fc,nchw->nfhw", W1, x) + b1[:, None, None]
    z2 = np.einsum("fc,nchw->nfhw", W2, np.maximum(z1, 0)) + b2[:, None, None]
    hw = x.shape[2] * x.shape[3]
    d2 = np.broadcast_to(p["fc/W"][:, c][None, :, None, None] / hw, z2.shape)
    g2 = d2 * (z2 > 0) * (d2 > 0)
    d1 = np.einsum("fc,nfhw->nchw", W2, g2)
    g1 = d1 * (z1 > 0) * (d1 > 0)
    dx = np.einsum("fc,nfhw->nchw", W1, g1)
    return dx


@pytest.fixture(scope="module")
def tiny_backends():
    model = tiny_model()
    space = InputSpace.unit_rgb()
    return model, NumpyBackend(model, space), space


def test_guided_backprop_hand_rule_numpy_and_restores(tiny_backends):
    model, b, space = tiny_backends
    x = space.to_model(np.random.default_rng(4).uniform(0, 255, (3, 3, 2, 3)))
    plain = input_gradient_pixels(b, x, 1)
    gb = at.guided_backprop(b, x, 1)
    ref = hand_guided(model, x, 1) * space.pixel_scale_col(np.float64)
    np.testing.assert_allclose(gb, ref, rtol=1e-10, atol=1e-14)
    assert np.abs(gb - plain).max() > 1e-3 * np.abs(plain).max()  # the rule changed something
    np.testing.assert_array_equal(input_gradient_pixels(b, x, 1), plain)  # ReLUs restored
    assert not any("backward" in vars(m) for m in model.layers)


def test_guided_relus_reach_inside_fire_modules():
    model = Sequential([Conv2D(3, 4, 3, name="c"), ReLU(name="r"), Fire(4, 2, 3, 3, name="f"),
                        GlobalAvgPool(name="g")], input_shape=(3, 8, 8))  # fmt: skip
    with at.guided_relus(model) as n:
        assert n == 1 + 3
        patched = [r for r in model.get_layer("f")._relus.values() if "_fns" in vars(r)]
        assert len(patched) == 3
    assert not any("_fns" in vars(r) for r in model.get_layer("f")._relus.values())


@pytest.mark.tf
def test_guided_backprop_tf_matches_numpy(tiny_backends, np_backend, tf_backend):
    from convnet.interop.keras import to_keras
    from convnet.interop.tf_backend import TFBackend

    model, b, space = tiny_backends
    tb = TFBackend(to_keras(model), space)
    x = space.to_model(np.random.default_rng(4).uniform(0, 255, (3, 3, 2, 3)))
    np.testing.assert_allclose(at.guided_backprop(tb, x, 1), at.guided_backprop(b, x, 1),
                               rtol=1e-9, atol=1e-14)  # fmt: skip
    # The unguided TF backend is untouched by the guided copy.
    np.testing.assert_allclose(input_gradient_pixels(tb, x, 1), input_gradient_pixels(b, x, 1),
                               rtol=1e-9, atol=1e-14)  # fmt: skip
    xs = image()
    np.testing.assert_allclose(at.guided_grad_cam(tf_backend, xs, 2, "relu2"),
                               at.guided_grad_cam(np_backend, xs, 2, "relu2"),
                               rtol=1e-8, atol=1e-12)  # fmt: skip


@pytest.mark.tf
def test_guided_keras_relu6_and_fused_activation():
    from convnet.interop._tf import import_keras
    from convnet.interop.tf_backend import TFBackend

    keras = import_keras()
    keras.utils.set_random_seed(5)
    inp = keras.Input((2, 2, 3), dtype="float64")
    h = keras.layers.Conv2D(4, 1, activation="relu", name="c1", dtype="float64")(inp)
    h = keras.layers.ReLU(max_value=0.3, name="r6", dtype="float64")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap", dtype="float64")(h)
    out = keras.layers.Dense(2, name="fc", dtype="float64")(h)
    km = keras.Model(inp, out)
    km.get_layer("c1").set_weights([np.random.default_rng(6).normal(size=(1, 1, 3, 4)),
                                    np.array([0.1, -0.2, 0.3, 0.05])])  # fmt: skip
    space = InputSpace.unit_rgb()
    b = TFBackend(km, space)
    x = space.to_model(np.random.default_rng(7).uniform(0, 255, (2, 3, 2, 2)))
    W, bias = km.get_layer("c1").get_weights()
    z = np.einsum("cf,nchw->nfhw", W[0, 0], x) + bias[:, None, None]
    a = np.maximum(z, 0)
    v = km.get_layer("fc").get_weights()[0][:, 1]
    d = np.broadcast_to(v[None, :, None, None] / 4, z.shape)
    g = d * (a > 0) * (a < 0.3) * (d > 0)  # ReLU6-style cap, guided
    g = g * (z > 0) * (g > 0)  # the fused ReLU, guided
    ref = np.einsum("cf,nfhw->nchw", W[0, 0], g) * space.pixel_scale_col(np.float64)
    np.testing.assert_allclose(at.guided_backprop(b, x, 1), ref, rtol=1e-9, atol=1e-14)


# ---------------------------------------------------------------------- integrated gradients
@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_integrated_gradients_completeness(backend, baseline):
    # Classes whose score changes a lot between baseline and image (a relative error of a
    # near-zero difference would need far more steps).
    x = image()
    errs = {}
    for steps in (8, 256):
        attr = at.integrated_gradients(backend, x, [0, 3], baseline=baseline, steps=steps,
                                       sigma=2.0)  # fmt: skip
        errs[steps] = at.completeness_error(backend, x, [0, 3], attr, baseline, sigma=2.0)
    assert attr.shape == x.shape
    assert np.all(errs[256] < 0.01), errs
    assert errs[256].max() < errs[8].max()  # the quadrature converges


def test_integrated_gradients_exact_on_a_linear_model():
    # Score linear in x: every rule is exact and the attribution is (x - x0) * w.
    model = Sequential([Conv2D(3, 2, 1, name="c", dtype=np.float64, seed=0),
                        GlobalAvgPool(name="g")], input_shape=(3, 4, 4))  # fmt: skip
    space = InputSpace.unit_rgb()
    b = NumpyBackend(model, space)
    x = space.to_model(np.random.default_rng(0).uniform(0, 255, (1, 3, 4, 4)))
    x0 = at.make_baseline(b, x, "blur", sigma=1.0)
    w = model.params["c/W"][1, :, 0, 0][None, :, None, None] / 16
    for rule in at.IG_RULES:
        attr = at.integrated_gradients(b, x, 1, "blur", steps=3, rule=rule, sigma=1.0)
        np.testing.assert_allclose(attr, (x - x0) * w, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="rule"):
        at.integrated_gradients(b, x, 1, rule="simpson")
    with pytest.raises(ValueError, match="baseline"):
        at.make_baseline(b, x, "white")


# -------------------------------------------------------------------------------- SmoothGrad
@pytest.mark.parametrize("method,kw", [(at.guided_backprop, {}), (at.grad_cam, {"layer": "relu2"}),
                                       (at.integrated_gradients, {"steps": 4})])  # fmt: skip
def test_smoothgrad_is_mean_over_seeded_noisy_copies(backend, method, kw):
    x = image()
    got = at.smoothgrad(method, backend, x, [0, 4], samples=5, noise=0.1, seed=7, batch_size=2,
                        **kw)  # fmt: skip
    rng = np.random.default_rng(7)
    sigma = 0.1 * 255 * SPACE.pixel_scale_col(np.float64)
    ref = []
    for i, c in enumerate([0, 4]):
        outs = []
        for _ in range(5):
            xi = x[i : i + 1] + sigma * rng.standard_normal((1, *x.shape[1:]))
            outs.append(method(backend, xi, c, **kw)[0])
        ref.append(np.mean(outs, axis=0))
    np.testing.assert_allclose(got, np.stack(ref), rtol=1e-9, atol=1e-12)
    assert not np.allclose(got, method(backend, x, [0, 4], **kw))


# --------------------------------------------------------------------------------- occlusion
def test_occlusion_equals_unbatched_score_drops(backend):
    x = image()
    cls = np.array([2, 0])
    got = occlusion(backend, x, cls, patch=4, stride=4, fill=50.0, batch_size=5)
    fill = SPACE.to_model(np.full((1, 3, 1, 1), 50.0))[0]
    ref = np.zeros((2, 10, 10))
    count = np.zeros((10, 10))
    for i in range(2):
        base = backend.scores(x[i : i + 1])[0, cls[i]]
        for r in (0, 4, 6):  # 10 - 4 = 6: the last patch is flush with the edge
            for c in (0, 4, 6):
                xo = x[i : i + 1].copy()
                xo[0, :, r : r + 4, c : c + 4] = fill
                ref[i, r : r + 4, c : c + 4] += base - backend.scores(xo)[0, cls[i]]
                count[r : r + 4, c : c + 4] += i == 0
    np.testing.assert_allclose(got, ref / count, rtol=1e-9, atol=1e-12)
    assert patch_positions(9, 4, 3) == [0, 3, 5]
    with pytest.raises(ValueError, match="larger than"):
        occlusion(backend, x, 0, patch=12)


def test_rank_correlation_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    r = np.random.default_rng(0)
    a = r.normal(size=(20, 20))
    b = a + r.normal(size=(20, 20))
    b[b < 0] = 0  # ties
    assert at.rank_correlation(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel())[0])


# ------------------------------------------------------------------ sanity checks, SqueezeNet
def dog_region(pixels: np.ndarray) -> np.ndarray:
    """The labrador's pixels in the 227x227 image: cream fur is redder than green grass.

    Pixels with R > G inside the dog's bounding box (rows 12-218, cols 15-210, read off the
    resized image), closed (3 px) to fill the fur's shadows, opened (2 px) to drop grass
    specks, then grown by 3 px. Covers 43% of the image.
    """
    rgb = pixels[0]
    box = np.zeros(rgb.shape[1:], bool)
    box[12:219, 15:211] = True
    fur = (rgb[0] > rgb[1]) & box

    def grow(m, r):
        p = np.pad(m, r)
        out = np.zeros_like(m)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                out |= p[dy : dy + m.shape[0], dx : dx + m.shape[1]]
        return out

    def shrink(m, r):
        return ~grow(~m, r)

    closed = shrink(grow(fur, 3), 3)
    opened = grow(shrink(closed, 2), 2)
    return grow(opened, 3) & box


@pytest.fixture(scope="module")
def labrador():
    path = need_data("images/YellowLabradorLooking_new.jpg")
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    from convnet.data.images import image_to_pixels
    from convnet.models.squeezenet import squeezenet_backend

    b = squeezenet_backend()
    pix = image_to_pixels(path, (227, 227))
    return b, pix, b.input_space.to_model(pix)


def test_grad_cam_of_labrador_lies_on_the_dog(labrador):
    b, pix, x = labrador
    assert int(b.scores(x)[0].argmax()) == 208
    dog = dog_region(pix)
    assert 0.40 < dog.mean() < 0.46
    for plus in (False, True):
        hm = at.grad_cam(b, x, 208, "fire9", plus=plus)[0]
        mass = hm[dog].sum() / hm.sum()
        # Measured 0.63 (Grad-CAM) and 0.62 (Grad-CAM++) on 43% of the image.
        assert mass > 0.5 and mass > 1.3 * dog.mean(), mass


def test_cascading_randomisation_changes_grad_cam(labrador):
    from convnet.models.squeezenet import SqueezeNet, squeezenet_backend

    _, _, x = labrador
    b = squeezenet_backend()
    ref = at.grad_cam(b, x, 208, "fire9")[0]
    fresh = SqueezeNet(None, seed=1)
    rhos = []
    for top in ["conv10", "fire9", "fire8", "fire7", "fire6", "fire5", "fire4", "fire3",
                "fire2", "conv1"]:  # fmt: skip
        for k in b.model.params:
            if k.split("/")[0] == top:
                b.model.params[k] = fresh.params[k]
        rhos.append(at.rank_correlation(ref, at.grad_cam(b, x, 208, "fire9")[0]))
    # Measured: 0.50 0.35 0.24 0.39 0.19 0.52 0.12 0.34 -0.04 0.37 (top to bottom).
    assert max(abs(r) for r in rhos) < 0.6, rhos
    assert at.rank_correlation(ref, ref) == pytest.approx(1.0)


@pytest.mark.slow
def test_integrated_gradients_completeness_squeezenet(labrador):
    b, _, x = labrador
    # Measured on the labrador (trapezoid rule): blurred baseline 0.10% at 64 steps, black
    # baseline 0.35% at 256 steps (1.15% at 128, 3.1% at 64).
    for baseline, steps in (("blur", 64), ("black", 256)):
        attr = at.integrated_gradients(b, x, 208, baseline, steps=steps)
        assert at.completeness_error(b, x, 208, attr, baseline)[0] < 0.01


@pytest.mark.slow
@pytest.mark.tf
def test_guided_clone_of_a_keras_application():
    # MobileNetV2 (ReLU6 layers, depthwise convs, batch norm) with random weights: every ReLU
    # becomes guided, the forward pass is unchanged, Grad-CAM runs on its softmax output.
    from convnet.interop.pretrained import build_keras_model, input_space_for
    from convnet.interop.tf_backend import TFBackend
    from convnet.interop.tf_guided import guided_backend

    m = build_keras_model("mobilenet_v2", True, None, alpha=0.35, input_shape=(96, 96, 3))
    b = TFBackend(m, input_space_for("mobilenet_v2"))
    gb = guided_backend(b)
    relus = [layer.name for layer in m.layers if type(layer).__name__ == "ReLU"]
    assert len(relus) > 30
    assert all(type(gb.model.get_layer(n)).__name__ == "GuidedReLU" for n in relus)
    x = b.input_space.to_model(np.random.default_rng(0).uniform(0, 255, (1, 3, 96, 96)))
    np.testing.assert_array_equal(gb.scores(x), b.scores(x))
    assert guided_backend(b) is gb  # built once
    hm = at.grad_cam(b, x, 3, "out_relu")
    assert hm.shape == (1, 96, 96) and hm.max() == pytest.approx(1.0)
