"""Input-gradient methods on the pretrained SqueezeNet, in NumPy and through the TF backend.

Budget: FGSM costs one forward+backward and three forwards at 227 px; the class
visualisation parity runs 20 steps at 48 px in each backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data

from convnet.inputgrad import (
    Channel,
    InputSpace,
    NumpyBackend,
    UnknownLayerError,
    class_visualization,
    fgsm,
    image_to_pixels,
    save_png,
)
from convnet.models.squeezenet import SqueezeNet

LAB = "images/YellowLabradorLooking_new.jpg"


@pytest.fixture(scope="module")
def backend():
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    return NumpyBackend(SqueezeNet("imagenet"))


def test_fgsm_two_levels_flips_labrador_and_survives_png(backend, tmp_path):
    space = backend.input_space
    x = space.to_model(image_to_pixels(need_data(LAB), 227))
    res = fgsm(backend, x, 208, eps=2.0)
    assert res.orig_pred[0] == 208 and res.originally_correct[0]
    assert res.success[0] and res.pred[0] != 208, res.summary()
    assert res.linf[0] == pytest.approx(2.0, abs=1e-4)  # pixel levels, exactly eps
    assert res.l2[0] > 2.0 * 200  # nearly every pixel moved
    # Saved as an 8-bit PNG and loaded again, it still fools the model.
    path = save_png(space.to_pixels(res.x_adv), tmp_path / "adv.png")
    back = space.to_model(image_to_pixels(path))
    assert np.abs(space.to_pixels(back) - space.to_pixels(res.x_adv)).max() <= 0.5
    assert backend.predict_proba(back)[0].argmax() != 208


def test_clear_errors(backend):
    x = np.zeros((1, 3, 67, 67), np.float32)
    with pytest.raises(ValueError, match=r"class index 1000 out of range \[0, 1000\)"):
        class_visualization(backend, 1000, steps=1, progress=False)
    with pytest.raises(UnknownLayerError, match="unknown layer 'fire10'"):
        backend.value_and_grad(Channel("fire10", 0), x)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        backend.forward(np.zeros((1, 1, 67, 67), np.float32), ["pool10"])
    with pytest.raises(ValueError, match="out of range"):
        fgsm(backend, x, -1, eps=1.0)


@pytest.mark.tf
def test_class_visualization_same_in_numpy_and_tf(backend):
    """20 steps from one seed at 48x48: the two images agree to 0.01 pixel levels (measured:
    1.2e-4 at worst, 3e-5 RMS; not bit-identical because float32 sums run in another order),
    the objective histories to rel 1e-5; the TF functions trace once."""
    from convnet.interop.keras import to_keras
    from convnet.interop.tf_backend import TFBackend

    tb = TFBackend(to_keras(SqueezeNet("imagenet", image_size=48)), InputSpace.caffe_bgr_0_255())
    kw = dict(steps=20, size=48, seed=3, progress=False)
    x_np, h_np = class_visualization(backend, 130, **kw)
    x_tf, h_tf = class_visualization(tb, 130, **kw)
    assert tb.trace_count == 2  # one forward and one vjp function, never retraced
    d = backend.input_space.to_pixels(x_np) - tb.input_space.to_pixels(x_tf)
    assert np.abs(d).max() < 0.01
    np.testing.assert_allclose(h_np, h_tf, rtol=1e-5, atol=1e-4)
    assert h_np[-1] > h_np[0]  # the class score went up
