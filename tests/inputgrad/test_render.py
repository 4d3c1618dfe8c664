"""The one input-optimisation loop, ``render``: parameterisations, optimisers, octaves, the
monitor, the progress bar and its errors, on the tiny hand-written model (fast)."""

from __future__ import annotations

import numpy as np
import pytest
from toymodel import ToyModel

from convnet.inputgrad import (
    L2,
    Blur,
    ClassScore,
    Clip,
    FourierParam,
    InputParam,
    InputSpace,
    Jitter,
    LayerMean,
    Monitor,
    NumpyBackend,
    PixelParam,
    TotalVariation,
    render,
)
from convnet.inputgrad.optimize import normalized_sgd


@pytest.fixture
def toy():
    return NumpyBackend(ToyModel(h=8, w=8), InputSpace.unit_rgb())


def test_normalized_sgd_step_has_the_learning_rate_as_length(rng):
    w = rng.standard_normal((2, 3, 4, 4))
    dw = rng.standard_normal(w.shape) * np.array([1.0, 1e-3])[:, None, None, None]
    for norm, size in [("l2", lambda d: np.sqrt(np.sum(d * d))),
                       ("std", np.std), ("mean_abs", lambda d: np.mean(np.abs(d)))]:  # fmt: skip
        w1, cfg = normalized_sgd(w, dw, {"learning_rate": 0.5, "norm": norm})
        for n in range(2):  # per image, whatever the gradient's scale
            assert size(w[n] - w1[n]) == pytest.approx(0.5 * size(dw[n]) / (size(dw[n]) + 1e-8))
    assert cfg["norm"] == "mean_abs"
    with pytest.raises(ValueError, match="norm must be"):
        normalized_sgd(w, dw, {"norm": "linf"})


def test_render_pixel_param_history_monitor_and_seed(toy):
    obj = ClassScore(1)
    kw = dict(optimizer="adam", optimizer_config={"learning_rate": 0.05},
              transforms=[Jitter(1)], seed=4, monitor={"l2": L2(), "score": obj})  # fmt: skip
    a = render(toy, obj, PixelParam((1, 3, 8, 8), init="random", seed=1), 12, **kw)
    b = render(toy, obj, PixelParam((1, 3, 8, 8), init="random", seed=1), 12, **kw)
    assert np.array_equal(a.x, b.x) and a.history == b.history  # seeded
    assert len(a.history) == 12 and a.history[-1] > a.history[0]
    assert a.monitor["score"] == pytest.approx(a.history)  # same activations, same step
    assert len(a.monitor["l2"]) == 12 and len(a.octaves) == 1
    p = a.param.to_pixels()
    assert p.min() >= 0 and p.max() <= 255  # the pixel parameterisation clips itself
    np.testing.assert_allclose(a.x, InputSpace.unit_rgb().to_model(p), atol=1e-6)


def test_render_lbfgs_within_bounds_and_minimize(toy):
    # Minimise the distance to a target image outside [0, 1]: L-BFGS-B stops at the box.
    target = np.full((1, 3, 8, 8), 1.5)
    obj = L2(center=1.5) + 0.01 * TotalVariation()
    r = render(toy, obj, InputParam(np.full((1, 3, 8, 8), 0.2), bounds=(0.0, 1.0)), 30,
               optimizer="lbfgs", maximize=False)  # fmt: skip
    np.testing.assert_allclose(r.x, np.minimum(target, 1.0), atol=1e-6)
    assert r.history[-1] == pytest.approx(0.5**2 * target.size, rel=1e-6)  # at the box
    stops = []
    r = render(toy, obj, np.full((1, 3, 8, 8), 0.2), 30, optimizer="lbfgs", maximize=False,
               callback=lambda s, x, v: stops.append(s) or s == 3)  # fmt: skip
    assert stops == [0, 1, 2, 3] and len(r.history) == 4


def test_render_octaves_detail_and_image(toy):
    obj = LayerMean("c1", squared=True)
    x0 = np.random.default_rng(2).uniform(0.2, 0.8, (1, 3, 10, 10))
    kw = dict(optimizer="normalized_sgd", optimizer_config={"learning_rate": 0.05},
              transforms=[Clip()], octaves=[0.5, 1.0, 1.5])  # fmt: skip
    d = render(toy, obj, x0, 3, **kw)
    assert [o.shape[2] for o in d.octaves] == [5, 10, 15] and d.x.shape == x0.shape
    z = render(toy, obj, PixelParam((1, 3, 10, 10), init=255 * x0), 3, carry="image",
               **{**kw, "transforms": [Jitter(1)], "optimizer": "adam"})
    assert z.x.shape == (1, 3, 15, 15) and isinstance(z.param, PixelParam)
    assert len(z.history) == 9 and z.history[-1] > z.history[0]
    with pytest.raises(ValueError, match="cannot restart"):
        render(toy, obj, FourierParam((1, 3, 10, 10)), 1, octaves=[0.5, 1.0])


def test_render_errors(toy):
    x0 = np.full((1, 3, 8, 8), 0.5)
    obj = ClassScore(0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        render(toy, obj, x0, -1)
    with pytest.raises(ValueError, match="carry must be"):
        render(toy, obj, x0, 1, carry="detail+image")
    with pytest.raises(ValueError, match="L-BFGS takes no transforms"):
        render(toy, obj, x0, 1, optimizer="lbfgs", transforms=[Jitter(1)])
    with pytest.raises(ValueError, match="input itself as the parameterisation"):
        render(toy, obj, PixelParam((1, 3, 8, 8)), 1, transforms=[Blur(1, 1.0)])
    with pytest.raises(ValueError, match="not supported with tiles"):
        render(toy, obj, x0, 1, tile_size=4, monitor=Monitor({"l2": L2()}))
    with pytest.raises(ValueError, match="unknown update rule|adamw"):
        render(toy, obj, x0, 1, optimizer="adamw")


def test_render_warns_on_zero_gradient(toy):
    with pytest.warns(UserWarning, match="zero gradient at the start image"):
        render(toy, L2(center=0.5), np.full((1, 3, 8, 8), 0.5), 2)


def test_progress_bar_closed_when_the_loop_fails(toy, monkeypatch):
    import tqdm.auto

    bars = []

    class Bar:
        def __init__(self, **kw):
            self.closed, self.n = False, 0
            bars.append(self)

        def update(self, n):
            self.n += n

        def set_postfix(self, **kw):
            pass

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)

    def boom(step, x, value):
        if step == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        render(toy, ClassScore(0), np.full((1, 3, 8, 8), 0.5), 5, callback=boom, progress=True)
    assert len(bars) == 1 and bars[0].closed and bars[0].n == 3
