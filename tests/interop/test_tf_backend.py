"""The TensorFlow backend on a small Keras model with unknown image size (fast after the TF
import): layout conversion, several layers at once, no retracing across image sizes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convnet.inputgrad import Channel, ClassScore, InputSpace, LayerMean, UnknownLayerError

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def kmodel():
    from convnet.interop._tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, activation="tanh", name="c1")(inp)
    h = keras.layers.Conv2D(6, 3, strides=2, name="c2")(h)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(5, name="logits")(g)
    return keras.Model(inp, out, name="small")


def test_import_convnet_does_not_import_tensorflow():
    code = (
        "import sys, convnet.inputgrad, convnet.models.squeezenet, convnet.interop.tf_backend\n"
        "assert 'tensorflow' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_vjp_matches_tape_in_nhwc_and_no_retrace(kmodel):
    from convnet.interop._tf import import_tf
    from convnet.interop.tf_backend import TFBackend

    tf = import_tf()
    b = TFBackend(kmodel, InputSpace.tf_minus1_1())
    assert b.input_shape is None and b.layer_names == ["c1", "c2", "gap", "logits"]
    assert b.num_classes == 5 and not b.output_is_probs
    obj = ClassScore([1, 3]) + 0.5 * Channel("c1", 2) + LayerMean("c2", squared=True)
    rng = np.random.default_rng(0)
    for hw in [(12, 15), (9, 9), (20, 11)]:
        x = rng.uniform(-1, 1, (2, 3, *hw)).astype(np.float32)
        acts = b.forward(x, obj.layers)
        assert acts["c1"].shape == (2, 4, hw[0] - 2, hw[1] - 2)  # NCHW out
        dx = b.vjp(obj.grad(acts))
        xt = tf.constant(x.transpose(0, 2, 3, 1))
        with tf.GradientTape() as tape:
            tape.watch(xt)
            c1 = kmodel.get_layer("c1")(xt)
            c2 = kmodel.get_layer("c2")(c1)
            logits = kmodel.get_layer("logits")(kmodel.get_layer("gap")(c2))
            v = (
                tf.reduce_sum(tf.gather(logits, [1, 3], axis=1, batch_dims=0) * np.eye(2))
                + 0.5 * tf.reduce_sum(tf.reduce_mean(c1[..., 2], axis=(1, 2)))
                + tf.reduce_sum(tf.reduce_mean(c2**2, axis=(1, 2, 3)))
            )
        ref = tape.gradient(v, xt).numpy().transpose(0, 3, 1, 2)
        np.testing.assert_allclose(dx, ref, rtol=1e-4, atol=1e-6)
        assert obj.value(acts) == pytest.approx(float(v), rel=1e-5)
    assert b.trace_count == 2  # one forward + one vjp function for this layer set
    with pytest.raises(UnknownLayerError, match="unknown layer 'c9'"):
        b.forward(x, ["c9"])
