"""The pieces of the Keras converters that need no TensorFlow: the layer walk (shapes and the
channel order after a Flatten), the parameter maps built on it, and the NCHW/NHWC layout
converters as round trips."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from convnet.interop.keras.layout import (
    conv_transpose_weight_from_keras,
    conv_transpose_weight_to_keras,
    conv_weight_from_keras,
    conv_weight_to_keras,
    dense_weight_from_keras,
    dense_weight_to_keras,
    flat_keras_to_convnet,
    nchw_to_nhwc,
    nhwc_to_nchw,
    shape_from_keras,
    shape_to_keras,
)
from convnet.interop.keras.params import param_maps
from convnet.interop.keras.walk import walk
from convnet.models import Sequential
from convnet.models import modules as M


def _small_model() -> Sequential:
    """conv (2->3, 3x3, pad 1) -> relu -> flatten -> dropout -> dense -> relu -> dense."""
    return Sequential([
        M.Conv2D(2, 3, 3, pad=1, name="conv", seed=0),
        M.ReLU(name="relu"),
        M.Flatten(name="flat"),
        M.Dropout(0.5, name="drop"),
        M.Dense(3 * 5 * 4, 6, name="fc", seed=1),
        M.ReLU(name="relu2"),
        M.Dense(6, 2, name="out", seed=2),
    ], input_shape=(2, 5, 4))


def test_walk_tracks_shapes_and_the_flatten_order():
    steps = list(walk(_small_model()))
    assert [s.name for s in steps] == ["conv", "relu", "flat", "drop", "fc", "relu2", "out"]
    assert [s.in_shape for s in steps] == [(2, 5, 4), (3, 5, 4), (3, 5, 4), (60,), (60,),
                                           (6,), (6,)]
    assert [s.out_shape for s in steps] == [(3, 5, 4), (3, 5, 4), (60,), (60,), (6,), (6,),
                                            (2,)]
    # The flattened (3, 5, 4) map survives the element-wise dropout and reaches fc; fc's
    # output is a plain vector again.
    assert [s.in_chw for s in steps] == [None, None, None, (3, 5, 4), (3, 5, 4), None, None]
    assert [s.out_chw for s in steps] == [None, None, (3, 5, 4), (3, 5, 4), None, None, None]
    assert [s.dense_chw for s in steps if s.kind == "Dense"] == [(3, 5, 4), None]
    # Dropout is skipped when naming the layer before (a max pool asks whether it is >= 0).
    assert [s.prev_kind for s in steps] == [None, "Conv2D", "ReLU", "Flatten", "Flatten",
                                            "Dense", "ReLU"]


def test_walk_dense_on_a_map_flattens_it_itself():
    model = Sequential([M.Conv2D(1, 2, 3, name="conv", seed=0), M.Dense(2 * 3 * 3, 4, name="fc")],
                       input_shape=(1, 5, 5))
    fc = list(walk(model))[1]
    assert (fc.in_shape, fc.in_chw, fc.dense_chw) == ((2, 3, 3), None, (2, 3, 3))


def test_param_maps_permute_only_the_dense_after_a_flatten():
    model = _small_model()
    maps = {pm.key: pm for pm in param_maps(model)}
    assert sorted(maps) == ["conv/W", "conv/b", "fc/W", "fc/b", "out/W", "out/b"]
    assert {pm.keras_layer for pm in maps.values()} == {"conv", "fc", "out"}
    w = np.asarray(model.params["fc/W"])
    np.testing.assert_array_equal(maps["fc/W"].to_keras(w), dense_weight_to_keras(w, (3, 5, 4)))
    assert not np.array_equal(maps["fc/W"].to_keras(w), w)
    w_out = np.asarray(model.params["out/W"])
    np.testing.assert_array_equal(maps["out/W"].to_keras(w_out), w_out)
    for key, pm in maps.items():
        a = np.asarray(model.params[key])
        np.testing.assert_array_equal(pm.from_keras(pm.to_keras(a)), a)


def test_param_maps_of_a_fire_module_and_renamed_parts():
    model = Sequential([M.Fire(3, 2, 4, 4, name="fire2", seed=0)], input_shape=(3, 6, 6))
    maps = param_maps(model)
    assert [pm.keras_layer for pm in maps if pm.attr == "kernel"] == [
        "fire2_squeeze1x1", "fire2_expand1x1", "fire2_expand3x3"]
    renamed = param_maps(model, {"fire2/expand3x3": "conv_9"})
    assert {pm.keras_layer for pm in renamed if pm.key.startswith("fire2/expand3x3/")} == {
        "conv_9"}


def test_layout_converters_round_trip():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3, 2, 4))
    np.testing.assert_array_equal(conv_weight_from_keras(conv_weight_to_keras(w)), w)
    np.testing.assert_array_equal(
        conv_transpose_weight_from_keras(conv_transpose_weight_to_keras(w)), w)
    d = rng.standard_normal((3 * 4 * 2, 5))
    np.testing.assert_array_equal(dense_weight_from_keras(dense_weight_to_keras(d, (3, 4, 2)),
                                                          (3, 4, 2)), d)
    x = rng.standard_normal((2, 3, 4, 5))
    xk = nchw_to_nhwc(x)
    assert xk.shape == (2, 4, 5, 3) and xk[1, 2, 3, 0] == x[1, 0, 2, 3]
    np.testing.assert_array_equal(nhwc_to_nchw(xk), x)
    v = rng.standard_normal((2, 7))
    assert nchw_to_nhwc(v) is v and nhwc_to_nchw(v) is v  # vectors have one layout
    # What Keras' Flatten gives (h, w, c order), put back into convnet's (c, h, w) order.
    np.testing.assert_array_equal(flat_keras_to_convnet(xk.reshape(2, -1), (3, 4, 5)),
                                  x.reshape(2, -1))
    assert shape_to_keras((3, 4, 5)) == (4, 5, 3) and shape_from_keras((4, 5, 3)) == (3, 4, 5)
    assert shape_to_keras((7,)) == (7,) == shape_from_keras((7,))


def test_interop_does_not_import_inputgrad():
    """The backend contract lives in convnet.backend; interop must not reach into the
    input-gradient methods (function-local imports included)."""
    root = Path(__file__).resolve().parents[2] / "convnet" / "interop"
    bad = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names if n.startswith("convnet.inputgrad")]
    assert bad == []
