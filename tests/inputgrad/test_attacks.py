"""DeepFool, Carlini-Wagner L2 and what an untargeted attack's ``success`` means.

Every attack runs on the NumPy backend and on the TF backend over the ``to_keras`` twin of the
same network (fixture ``backend``, the TF case marked ``tf``), and must agree with the NumPy
result within the tolerance stated next to each check (differences measured on this machine
in the comments). Budget: 24x24 images; about 5 s of CPU per backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from toymodel import make_backend

from convnet.inputgrad.adversarial import fgsm, iterative_fgsm
from convnet.inputgrad.attacks_minimal import carlini_wagner_l2, deepfool

OVERSHOOT = 0.02
EPS_GRID = (0.5, 1, 2, 4, 8, 16, 32)  # pixel levels


def _smallest_fgsm(backend, x, label):
    """FGSM at the smallest eps of EPS_GRID that changes the top-1."""
    for eps in EPS_GRID:
        r = fgsm(backend, x, label, eps)
        if r.success[0]:
            return r
    raise AssertionError("FGSM never succeeded on the grid")


# ----------------------------------------------------------------------------- DeepFool
def _linear_model():
    from convnet.models import Sequential
    from convnet.models import modules as M

    return Sequential([M.Flatten(name="flat"), M.Dense(3 * 6 * 6, 5, name="fc", seed=7)],
                      input_shape=(3, 6, 6))  # fmt: skip


@pytest.mark.parametrize("kind", ["numpy", pytest.param("tf", marks=pytest.mark.tf)])
def test_deepfool_is_exact_on_a_linear_model(kind):
    """On an affine classifier f(p) = W p + b (p in pixels) the smallest L2 change that
    moves the top-1 away from k0 is ``min_k |f_k - f_k0| / ||w_k - w_k0||`` (distance to the
    nearest face of a convex polyhedron), and DeepFool's first step lands exactly there, times
    ``1 + overshoot``, plus the 1e-4 it adds to cross the boundary."""
    model = _linear_model()
    backend = make_backend(kind, model, fixed_size=True)
    pix = np.random.default_rng(0).uniform(60, 200, (1, 3, 6, 6)).astype(np.float32)
    x = backend.input_space.to_model(pix)
    # the closed form from the weights themselves, not from the backend's gradients
    W = model.params["fc/W"].astype(np.float64)
    f = x.reshape(1, -1).astype(np.float64) @ W + model.params["fc/b"]
    k0 = int(f.argmax())
    w_pix = W.T.reshape(5, 3, 6, 6) * backend.input_space.pixel_scale_col(np.float64)[0]
    dist = {k: abs(f[0, k] - f[0, k0]) / np.linalg.norm(w_pix[k] - w_pix[k0])
            for k in range(5) if k != k0}  # fmt: skip
    nearest = min(dist, key=dist.get)
    wn = np.linalg.norm(w_pix[nearest] - w_pix[k0])

    r = deepfool(backend, x, overshoot=OVERSHOOT, clip=False)
    assert r.steps == 1 and r.success[0] and r.pred[0] == nearest
    expected = (1 + OVERSHOOT) * (abs(f[0, nearest] - f[0, k0]) + 1e-4) / wn
    # float32 images: measured 2e-7 relative
    np.testing.assert_allclose(r.l2[0], expected, rtol=1e-5)
    np.testing.assert_allclose(r.l2[0] / (1 + OVERSHOOT), dist[nearest], rtol=1e-3)
    # and along the normal of that face
    d = (backend.input_space.to_pixels(r.x_adv) - pix).astype(np.float64).ravel()
    normal = (w_pix[nearest] - w_pix[k0]).ravel()
    assert d @ normal / (np.linalg.norm(d) * np.linalg.norm(normal)) > 1 - 1e-5


@pytest.mark.parametrize("kind", ["numpy", pytest.param("tf", marks=pytest.mark.tf)])
def test_cw_reaches_the_minimal_change_on_a_linear_model(kind):
    """Carlini-Wagner minimises ||delta||^2 + c * margin: on an affine classifier (a convex
    problem but for the tanh change of variable) its smallest successful change must come
    within 0.5% of the closed-form minimal distance (measured: 0.3% with the default budget
    of 6 x 100 Adam steps; 0.01% with 9 x 1000 steps at learning rate 1e-3)."""
    model = _linear_model()
    backend = make_backend(kind, model, fixed_size=True)
    pix = np.random.default_rng(0).uniform(60, 200, (1, 3, 6, 6)).astype(np.float32)
    x = backend.input_space.to_model(pix)
    W = model.params["fc/W"].astype(np.float64)
    f = x.reshape(1, -1).astype(np.float64) @ W + model.params["fc/b"]
    k0 = int(f.argmax())
    w_pix = W.T.reshape(5, 3, 6, 6) * backend.input_space.pixel_scale_col(np.float64)[0]
    dist = min(abs(f[0, k] - f[0, k0]) / np.linalg.norm(w_pix[k] - w_pix[k0])
               for k in range(5) if k != k0)  # fmt: skip
    r = carlini_wagner_l2(backend, x)
    assert r.success[0]
    assert dist * (1 - 1e-4) <= r.l2[0] <= dist * 1.005  # never below the true minimum


def test_deepfool_and_cw_flip_the_small_net(backend, numpy_backend, photo):
    x = backend.input_space.to_model(photo)
    clean = int(numpy_backend.predict_proba(x)[0].argmax())
    df = deepfool(backend, x)
    cw = carlini_wagner_l2(backend, x)
    ref_fgsm = _smallest_fgsm(backend, x, clean)
    for r in (df, cw):
        assert r.orig_pred[0] == clean and r.pred[0] != clean and r.success[0], r.summary()
        assert r.top1_changed[0] and r.originally_correct[0]
        pix = backend.input_space.to_pixels(r.x_adv)
        assert pix.min() >= -1e-3 and pix.max() <= 255 + 1e-3  # a valid image
        # a minimal change is smaller in L2 than FGSM's smallest successful one (measured:
        # DeepFool 98, CW 96, FGSM 330 pixel levels at eps 8)
        assert r.l2[0] < ref_fgsm.l2[0]
    # CW minimises the L2 norm directly; DeepFool's linearised steps overshoot (measured
    # CW / DeepFool = 0.97)
    assert cw.l2[0] <= 1.05 * df.l2[0]
    # the backends agree (measured: equal to the printed digits; 1e-6 relative)
    ref_df = deepfool(numpy_backend, x)
    ref_cw = carlini_wagner_l2(numpy_backend, x)
    assert df.pred[0] == ref_df.pred[0] and df.steps == ref_df.steps
    np.testing.assert_allclose(df.l2, ref_df.l2, rtol=1e-3)
    assert cw.pred[0] == ref_cw.pred[0]
    np.testing.assert_allclose(cw.l2, ref_cw.l2, rtol=2e-2)


def test_cw_targeted_and_confidence(backend, photo):
    x = backend.input_space.to_model(photo)
    probs = backend.predict_proba(x)[0]
    target = int(np.argsort(-probs)[2])  # the third most likely class
    r = carlini_wagner_l2(backend, x, target, targeted=True)
    assert r.success[0] and r.pred[0] == target and r.target[0] == target, r.summary()
    # kappa: the result wins by at least kappa in logits, and costs more L2 than kappa = 0
    plain = carlini_wagner_l2(backend, x)
    strong = carlini_wagner_l2(backend, x, kappa=1.0)
    z = backend.scores(strong.x_adv)[0].astype(np.float64)
    assert strong.success[0] and z[strong.label[0]] - np.delete(z, strong.label[0]).max() <= -1.0
    assert strong.l2[0] > plain.l2[0]


def test_cw_history_falls_within_a_search_step(numpy_backend, photo):
    x = numpy_backend.input_space.to_model(photo)
    r = carlini_wagner_l2(numpy_backend, x, search_steps=1, steps=40, abort_early=False,
                          initial_const=1.0)  # fmt: skip
    assert len(r.history) == r.steps == 40
    assert r.history[-1] < r.history[0]


# ------------------------------------------------------- what an untargeted success means
def test_untargeted_success_needs_the_top1_to_change(numpy_backend, photo):
    """Attacking away from a class the model never predicted: ``pred != label`` holds before
    any attack, so success is counted only where the top-1 moved from the clean top-1."""
    b = numpy_backend
    x = b.input_space.to_model(photo)
    clean = int(b.predict_proba(x)[0].argmax())
    label = (clean + 2) % 5  # not the prediction
    seen = set()
    for eps in EPS_GRID:
        r = fgsm(b, x, label, eps)
        assert not r.originally_correct[0]
        assert r.success[0] == (r.pred[0] != clean and r.pred[0] != label)
        seen.add(bool(r.success[0]))
        note = r.note(0)
        assert f"never predicted {label}" in note and f"top-1 was {clean}" in note
        assert ("not a success" in note) != bool(r.success[0])
        assert note in r.summary()
    assert seen == {True, False}  # small eps leave the top-1 alone, large ones move it
    # DeepFool only runs while the top-1 is the label: nothing to do here
    d = deepfool(b, x, label)
    assert d.steps == 0 and not d.success[0] and d.l2[0] == 0
    # the usual case: away from the clean top-1, no note
    r = fgsm(b, x, clean, 32.0)
    assert r.success[0] and r.note(0) == "" and r.originally_correct[0]
    # iterative FGSM's early stop follows the same rule (it used to stop at step 0)
    it = iterative_fgsm(b, x, label, eps=32.0, iterations=40, early_stop=True)
    assert it.steps > 0 and it.success[0]


def test_targeted_note_when_already_the_target(numpy_backend, photo):
    x = numpy_backend.input_space.to_model(photo)
    clean = int(numpy_backend.predict_proba(x)[0].argmax())
    r = fgsm(numpy_backend, x, clean, 1.0, targeted=True)
    assert r.success[0] and "already was the target" in r.note(0)


def test_bad_arguments(numpy_backend, photo):
    x = numpy_backend.input_space.to_model(photo)
    with pytest.raises(ValueError, match="overshoot >= 0"):
        deepfool(numpy_backend, x, overshoot=-0.1)
    with pytest.raises(ValueError, match="candidates >= 1"):
        deepfool(numpy_backend, x, candidates=0)
    with pytest.raises(ValueError, match="needs the target"):
        carlini_wagner_l2(numpy_backend, x, targeted=True)
    with pytest.raises(ValueError, match="kappa >= 0"):
        carlini_wagner_l2(numpy_backend, x, kappa=-1)
    with pytest.raises(ValueError, match="out of range"):
        deepfool(numpy_backend, x, 7)
