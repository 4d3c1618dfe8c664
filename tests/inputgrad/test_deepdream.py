"""DeepDream: the three variants (simple, octaves, tiled) and the zoom version."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data, need_keras_file

from convnet.gradcheck import eval_numerical_gradient, rel_error
from convnet.inputgrad.deepdream import deepdream, dream_objective, octave_scales, zoom_dream
from convnet.inputgrad.param import to_model_input


def _objective_at(backend, layers, pixels):
    obj = dream_objective(layers)
    x = to_model_input(backend.input_space, pixels)
    return obj.value(backend.forward(x, obj.layers))


def test_dream_objective_weighted_means(rng):
    acts = {"a": rng.standard_normal((1, 3, 4, 4)), "b": rng.standard_normal((1, 2, 2, 2))}
    obj = dream_objective({"a": 2.0, "b": 0.5})
    assert obj.value(acts) == pytest.approx(2 * acts["a"].mean() + 0.5 * acts["b"].mean())
    g = obj.grad(acts)
    np.testing.assert_allclose(g["a"], 2.0 / 48)
    np.testing.assert_allclose(g["b"], 0.5 / 8)
    num = eval_numerical_gradient(lambda v: obj.value({"a": v, "b": acts["b"]}), acts["a"].copy())
    assert rel_error(num, g["a"]) < 1e-8
    with pytest.raises(ValueError, match="at least one layer"):
        dream_objective([])


def test_octave_scales_and_bad_variant():
    np.testing.assert_allclose(octave_scales(1.5), [1 / 2.25, 1 / 1.5, 1, 1.5, 2.25])
    with pytest.raises(ValueError, match="variant"):
        deepdream(None, np.zeros((1, 3, 8, 8)), variant="dreamy")
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        deepdream(None, np.zeros((2, 8, 8)))


@pytest.fixture(scope="module")
def sky():
    from convnet.inputgrad.backend import image_to_pixels

    return image_to_pixels(need_data("images/sky.jpg"), size=(96, 128))


@pytest.fixture(scope="module")
def mobilenet():
    need_keras_file("models/mobilenet_2_5_224_tf_no_top.h5")
    from convnet.interop.pretrained import keras_model

    return keras_model("mobilenet", alpha=0.25)


@pytest.mark.tf
def test_three_variants_on_mobilenet(mobilenet, sky):
    layers = {"conv_pw_5_relu": 1.0, "conv_pw_8_relu": 1.0}
    before = _objective_at(mobilenet, layers, sky)
    gains = {}
    for variant, kw in [("simple", {}), ("octaves", {}), ("tiled", {"tile_size": 64})]:
        res = deepdream(mobilenet, sky, layers, variant=variant, steps=10, step_size=0.03, **kw)
        assert res.image.shape == sky.shape
        assert 0 <= res.image.min() and res.image.max() <= 255
        gains[variant] = _objective_at(mobilenet, layers, res.image) / before
        assert len(res.octaves) == (1 if variant == "simple" else 5)
    # Octave sizes: 1.3**n times the input size, n = -2..2.
    assert [o.shape[2] for o in res.octaves] == [round(96 * 1.3**n) for n in range(-2, 3)]
    # Measured gains ~1.3 (simple) to ~2 (octaves, tiled) at 10 steps of 0.03.
    assert gains["simple"] > 1.1, gains
    assert gains["octaves"] > 1.1 and gains["tiled"] > 1.1, gains


@pytest.mark.tf
def test_zoom_dream_grows_image(mobilenet, sky):
    res = zoom_dream(mobilenet, sky[:, :, :64, :64], ["conv_pw_5_relu"], zoom=1.3, zoom_steps=2,
                     steps=5, max_shift=8, learning_rate=0.02)
    assert [o.shape[2:] for o in res.octaves] == [(64, 64), (83, 83)]
    assert res.history[4] > res.history[0]


def test_simple_dream_on_squeezenet(sky):
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    from convnet.models.squeezenet import squeezenet_backend

    b = squeezenet_backend()
    img = sky[:, :, :64, :64]
    layers = ["fire3"]
    before = _objective_at(b, layers, img)
    res = deepdream(b, img, layers, variant="simple", steps=5, step_size=0.03)
    after = _objective_at(b, layers, res.image)
    assert after > 1.2 * before  # measured ~1.5x


@pytest.mark.slow
@pytest.mark.tf
def test_tiled_dream_2000x1500_bounded_memory(mobilenet):
    """Peak memory of a tiled dream on a 2000x1500 image (report: printed with -s)."""
    import resource

    img = np.random.default_rng(0).uniform(0, 255, (1, 3, 1500, 2000)).astype(np.float32)
    layers = ["conv_pw_5_relu", "conv_pw_8_relu"]
    deepdream(mobilenet, img[:, :, :512, :512], layers, variant="tiled", steps=1, octaves=[0])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = deepdream(mobilenet, img, layers, variant="tiled", steps=2, octaves=[0], tile_size=512)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n2000x1500 tiled dream: {res.seconds:.1f} s, peak RSS {rss1:.0f} MiB "
          f"(+{rss1 - rss0:.0f} MiB over a 512x512 tile run)")
    assert res.image.shape == img.shape
    # The image, its gradient and a roll copy are 36 MB each; activations are per tile.
    assert rss1 - rss0 < 1024


def test_cli_dream_writes_octaves(tmp_path):
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    from convnet.cli import main

    img = need_data("images/kitten.jpg")
    rc = main(["dream", str(img), "--size", "80", "--steps", "1", "--octaves", "2",
               "--layers", "fire3=1,fire4=0.5", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dream.png", "input.png", "octave_0.png", "octave_1.png"]
    assert main(["dream", str(img), "--layers", "fire3=x", "--out", str(tmp_path)]) == 2
