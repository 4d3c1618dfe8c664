"""Every functional layer, forward and backward, against its TensorFlow counterpart.

TensorFlow is the referee: forward outputs are compared directly, backward passes against
``tf.GradientTape().gradient(out, inputs, output_gradients=dout)`` (the same vector-Jacobian
product our ``*_backward`` computes). Everything runs in float64, where TF's CPU kernels are
exact up to summation order, so the tolerance is 1e-10 on the relative difference
``max|a - b| / max|b|``. Shapes, strides and paddings are drawn at random (seeded).

Tied maxima in max pooling: convnet routes the gradient to the first maximum of a window in
row-major order (docs/internals.md); TF's CPU ``MaxPoolGrad`` does the same, which
``test_max_pool_ties_route_like_tf_cpu`` checks. TF's GPU/cuDNN kernels make no such promise,
so the randomised tests use continuous random inputs, where ties have probability zero.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnet import layers as L

pytestmark = pytest.mark.tf

RTOL = 1e-10


@pytest.fixture(scope="module")
def tf():
    from convnet.interop import import_tf

    return import_tf()


def rel(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    return d / max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300) if d else 0.0


def assert_close(a, b, what: str, rtol: float = RTOL) -> None:
    r = rel(a, b)
    assert r <= rtol, f"{what}: relative difference {r:.3e} > {rtol:g}"


def tf_vjp(tf, fn, inputs: list[np.ndarray], dout: np.ndarray | None):
    """TF forward ``fn(*tensors)`` and the gradients of ``sum(out * dout)`` w.r.t. inputs."""
    ts = [tf.constant(v) for v in inputs]
    with tf.GradientTape() as tape:
        for t in ts:
            tape.watch(t)
        out = fn(*ts)
    if dout is None:
        grads = tape.gradient(out, ts)
    else:
        grads = tape.gradient(out, ts, output_gradients=tf.constant(dout))
    return out.numpy(), [g.numpy() for g in grads]


def nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------------- conv


def _conv_cases(n: int = 6):
    rng = np.random.default_rng(123)
    cases = []
    while len(cases) < n:
        N, C, F = (int(v) for v in rng.integers(1, 4, 3))
        H, W = (int(v) for v in rng.integers(4, 10, 2))
        k = int(rng.choice([1, 2, 3, 4, 5]))
        s = int(rng.choice([1, 2, 3]))
        p = int(rng.integers(0, 3))
        d = 1 if len(cases) % 3 else 2  # every third case dilated (at stride 1)
        s = 1 if d > 1 else s
        keff = d * (k - 1) + 1
        if H + 2 * p < keff or W + 2 * p < keff:
            continue
        cases.append((N, C, H, W, F, k, s, p, d))
    return cases


@pytest.mark.parametrize("backend", ["dispatch", "naive"])
@pytest.mark.parametrize(
    "case", _conv_cases(), ids=lambda c: "N{}C{}H{}W{}F{}k{}s{}p{}d{}".format(*c)
)
def test_conv_matches_tf_conv2d(tf, case, backend):
    N, C, H, W, F, k, s, p, d = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, k, k))
    b = rng.standard_normal(F)
    cp = {"stride": s, "pad": p}
    if d != 1:
        cp["dilation"] = d
    fwd, bwd = (
        (L.conv_forward, L.conv_backward)
        if backend == "dispatch"
        else (L.conv_forward_naive, L.conv_backward_naive)
    )
    out, cache = fwd(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = bwd(dout, cache)

    def f(xt, wt, bt):
        if d == 1:
            y = tf.nn.conv2d(xt, wt, strides=s, padding=[[0, 0], [p, p], [p, p], [0, 0]])
        else:
            # TF's CPU Conv2D has no dilated backward; tf.nn.convolution goes through
            # space_to_batch, which does (and needs stride 1).
            xt = tf.pad(xt, [[0, 0], [p, p], [p, p], [0, 0]])
            y = tf.nn.convolution(xt, wt, strides=1, padding="VALID", dilations=d)
        return y + bt

    tout, (tdx, tdw, tdb) = tf_vjp(
        tf, f, [nhwc(x), w.transpose(2, 3, 1, 0).copy(), b], nhwc(dout)
    )
    assert_close(out, nchw(tout), "conv forward")
    assert_close(dx, nchw(tdx), "conv dx")
    assert_close(dw, tdw.transpose(3, 2, 0, 1), "conv dw")
    assert_close(db, tdb, "conv db")


def _convt_cases(n: int = 5):
    rng = np.random.default_rng(7)
    cases = []
    while len(cases) < n:
        N, F, C = (int(v) for v in rng.integers(1, 4, 3))
        H, W = (int(v) for v in rng.integers(2, 7, 2))
        k = int(rng.choice([2, 3, 4]))
        s = int(rng.choice([1, 2, 3]))
        p = int(rng.integers(0, 2))
        op = int(rng.integers(0, s)) if s > 1 else 0
        Ho = (H - 1) * s - 2 * p + k + op
        Wo = (W - 1) * s - 2 * p + k + op
        if Ho < 1 or Wo < 1:
            continue
        cases.append((N, F, H, W, C, k, s, p, op))
    return cases


@pytest.mark.parametrize(
    "case", _convt_cases(), ids=lambda c: "N{}F{}H{}W{}C{}k{}s{}p{}op{}".format(*c)
)
def test_conv_transpose_matches_tf_conv2d_transpose(tf, case):
    """convnet's transposed conv (output_padding rows added at the bottom/right, then ``pad``
    cropped from every side) == TF's full 'VALID' transpose with the extra rows, cropped."""
    N, F, H, W, C, k, s, p, op = case
    rng = np.random.default_rng(sum(case) + 1)
    x = rng.standard_normal((N, F, H, W))
    w = rng.standard_normal((F, C, k, k))  # the weight of the conv C -> F it is the adjoint of
    b = rng.standard_normal(C)
    cp = {"stride": s, "pad": p, "output_padding": op}
    out, cache = L.conv_transpose_forward(x, w, b, cp)
    Ho, Wo = (H - 1) * s - 2 * p + k + op, (W - 1) * s - 2 * p + k + op
    assert out.shape == (N, C, Ho, Wo)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.conv_transpose_backward(dout, cache)
    full_h, full_w = (H - 1) * s + k + op, (W - 1) * s + k + op

    def f(xt, wt, bt):
        y = tf.nn.conv2d_transpose(xt, wt, output_shape=[N, full_h, full_w, C], strides=s,
                                   padding="VALID")
        return y[:, p:full_h - p, p:full_w - p, :] + bt

    tout, (tdx, tdw, tdb) = tf_vjp(
        tf, f, [nhwc(x), w.transpose(2, 3, 1, 0).copy(), b], nhwc(dout)
    )
    assert_close(out, nchw(tout), "conv_transpose forward")
    assert_close(dx, nchw(tdx), "conv_transpose dx")
    assert_close(dw, tdw.transpose(3, 2, 0, 1), "conv_transpose dw")
    assert_close(db, tdb, "conv_transpose db")


# ------------------------------------------------------------------------------- pooling


def _pool_cases():
    # (N, C, H, W, k, s, pad, ceil_mode): overlapping (s < k), non-overlapping, strided gaps,
    # padding, ceil mode (SqueezeNet's 3/2 on odd and even sizes)
    return [
        (2, 3, 8, 8, 2, 2, 0, False),
        (2, 2, 9, 7, 3, 2, 0, False),
        (1, 3, 7, 9, 3, 1, 0, False),
        (2, 2, 10, 8, 2, 3, 0, False),
        (1, 2, 7, 6, 3, 2, 1, False),
        (2, 3, 8, 8, 3, 2, 0, True),
        (1, 2, 13, 12, 3, 2, 0, True),
    ]


def _tf_pool_pads(H, W, k, s, p, Ho, Wo):
    """Padding (top, bottom, left, right) TF needs for convnet's output size."""
    eb = max((Ho - 1) * s + k - H - 2 * p, 0)
    er = max((Wo - 1) * s + k - W - 2 * p, 0)
    return p, p + eb, p, p + er


@pytest.mark.parametrize("backend", ["dispatch", "naive"])
@pytest.mark.parametrize(
    "case", _pool_cases(), ids=lambda c: "N{}C{}H{}W{}k{}s{}p{}ceil{}".format(*c)
)
def test_max_pool_matches_tf(tf, case, backend):
    N, C, H, W, k, s, p, ceil = case
    rng = np.random.default_rng(sum(map(int, case)))
    x = rng.standard_normal((N, C, H, W))  # continuous: no ties
    pp = {"pool_height": k, "pool_width": k, "stride": s}
    if p:
        pp["pad"] = p
    if ceil:
        pp["ceil_mode"] = True
    fwd, bwd = (
        (L.max_pool_forward, L.max_pool_backward)
        if backend == "dispatch"
        else (L.max_pool_forward_naive, L.max_pool_backward_naive)
    )
    out, cache = fwd(x, pp)
    dout = rng.standard_normal(out.shape)
    dx = bwd(dout, cache)
    t, bo, le, r = _tf_pool_pads(H, W, k, s, p, out.shape[2], out.shape[3])

    def f(xt):
        # -inf padding: a padded element never wins a window (what convnet's pad means)
        xt = tf.pad(xt, [[0, 0], [t, bo], [le, r], [0, 0]], constant_values=-np.inf)
        return tf.nn.max_pool2d(xt, ksize=k, strides=s, padding="VALID")

    tout, (tdx,) = tf_vjp(tf, f, [nhwc(x)], nhwc(dout))
    assert_close(out, nchw(tout), "max_pool forward")
    assert_close(dx, nchw(tdx), "max_pool dx")


def test_max_pool_ties_route_like_tf_cpu(tf):
    """Ties go to the first maximum in row-major window order, in convnet and TF (CPU)."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = [[1.0, 3.0], [3.0, 0.0]]  # tie between (0,1) and (1,0)
    x[0, 0, :2, 2:] = 2.0  # all four tied
    x[0, 0, 2:, :2] = [[0.0, 1.0], [5.0, 5.0]]
    x[0, 0, 2:, 2:] = [[-1.0, -1.0], [-1.0, -2.0]]
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = L.max_pool_forward(x, pp)
    dx = L.max_pool_backward(np.ones_like(out), cache)
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[0, 2] = expected[3, 0] = expected[2, 2] = 1.0
    np.testing.assert_array_equal(dx[0, 0], expected)
    _, (tdx,) = tf_vjp(
        tf, lambda t: tf.nn.max_pool2d(t, 2, 2, "VALID"), [nhwc(x)], nhwc(np.ones_like(out))
    )
    np.testing.assert_array_equal(nchw(tdx)[0, 0], expected)


@pytest.mark.parametrize("case", [(2, 3, 8, 8, 2, 2, 0), (1, 2, 9, 7, 3, 2, 0),
                                  (2, 2, 7, 7, 3, 1, 1)], ids=str)
def test_avg_pool_matches_tf(tf, case):
    """convnet counts zero padding in the average (count_include_pad), so TF gets an explicit
    zero pad and 'VALID' pooling (TF's 'SAME' would exclude the padding from the count)."""
    N, C, H, W, k, s, p = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((N, C, H, W))
    pp = {"pool_height": k, "pool_width": k, "stride": s}
    if p:
        pp["pad"] = p
    out, cache = L.avg_pool_forward(x, pp)
    dout = rng.standard_normal(out.shape)
    dx = L.avg_pool_backward(dout, cache)

    def f(xt):
        xt = tf.pad(xt, [[0, 0], [p, p], [p, p], [0, 0]])
        return tf.nn.avg_pool2d(xt, ksize=k, strides=s, padding="VALID")

    tout, (tdx,) = tf_vjp(tf, f, [nhwc(x)], nhwc(dout))
    assert_close(out, nchw(tout), "avg_pool forward")
    assert_close(dx, nchw(tdx), "avg_pool dx")


def test_global_avg_pool_and_concat_match_tf(tf):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5, 6))
    out, cache = L.global_avg_pool_forward(x)
    dout = rng.standard_normal(out.shape)
    dx = L.global_avg_pool_backward(dout, cache)
    tout, (tdx,) = tf_vjp(tf, lambda t: tf.reduce_mean(t, axis=[1, 2]), [nhwc(x)], dout)
    assert_close(out, tout, "global_avg_pool forward")
    assert_close(dx, nchw(tdx), "global_avg_pool dx")

    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 4, 4))
    out, cache = L.concat_forward([a, b], axis=1)
    dout = rng.standard_normal(out.shape)
    da, db = L.concat_backward(dout, cache)
    tout, (tda, tdb) = tf_vjp(tf, lambda s, t: tf.concat([s, t], axis=-1),
                              [nhwc(a), nhwc(b)], nhwc(dout))
    assert_close(out, nchw(tout), "concat forward")
    assert_close(da, nchw(tda), "concat da")
    assert_close(db, nchw(tdb), "concat db")


# ------------------------------------------------------------------------------- dense, activations


def test_affine_matches_tf_matmul(tf):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 2, 3, 5))  # affine flattens (N, d1..dk) row-major
    w = rng.standard_normal((30, 7))
    b = rng.standard_normal(7)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.affine_backward(dout, cache)
    tout, (tdx, tdw, tdb) = tf_vjp(
        tf, lambda xt, wt, bt: tf.matmul(tf.reshape(xt, (4, -1)), wt) + bt, [x, w, b], dout
    )
    assert_close(out, tout, "affine forward")
    assert_close(dx, tdx, "affine dx")
    assert_close(dw, tdw, "affine dw")
    assert_close(db, tdb, "affine db")


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu"])
def test_activation_matches_tf(tf, name):
    rng = np.random.default_rng(3)
    x = 3 * rng.standard_normal((4, 3, 5, 5))
    x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink of relu at 0
    dout = rng.standard_normal(x.shape)
    # alpha 0.25 is exact in float32: TF's LeakyRelu op stores alpha as a float32 attribute
    alpha = 0.25
    ours = {
        "relu": (L.relu_forward, L.relu_backward, tf.nn.relu),
        "sigmoid": (L.sigmoid_forward, L.sigmoid_backward, tf.nn.sigmoid),
        "tanh": (L.tanh_forward, L.tanh_backward, tf.nn.tanh),
        "leaky_relu": (lambda v: L.leaky_relu_forward(v, alpha), L.leaky_relu_backward,
                       lambda t: tf.nn.leaky_relu(t, alpha=alpha)),
    }
    fwd, bwd, tfn = ours[name]
    out, cache = fwd(x)
    dx = bwd(dout, cache)
    tout, (tdx,) = tf_vjp(tf, tfn, [x], dout)
    assert_close(out, tout, f"{name} forward")
    assert_close(dx, tdx, f"{name} dx")


# ------------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("spatial", [False, True], ids=["batchnorm", "spatial"])
def test_batchnorm_train_matches_tf(tf, spatial):
    """Training-mode batch norm (batch statistics, biased variance) vs tf.nn.moments +
    tf.nn.batch_normalization; gradients flow through the statistics in both."""
    rng = np.random.default_rng(4)
    eps = 1e-5
    if spatial:
        x = 2 + 3 * rng.standard_normal((4, 3, 5, 6))
        axes, D = [0, 1, 2], 3
    else:
        x = 2 + 3 * rng.standard_normal((8, 5))
        axes, D = [0], 5
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    bn_param = {"mode": "train", "eps": eps, "momentum": 0.9}
    fwd, bwd = ((L.spatial_batchnorm_forward, L.spatial_batchnorm_backward) if spatial
                else (L.batchnorm_forward, L.batchnorm_backward))
    out, cache = fwd(x, gamma, beta, bn_param)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = bwd(dout, cache)
    xin = nhwc(x) if spatial else x
    dref = nhwc(dout) if spatial else dout

    def f(xt, gt, bt):
        mean, var = tf.nn.moments(xt, axes=axes)
        return tf.nn.batch_normalization(xt, mean, var, bt, gt, eps)

    tout, (tdx, tdg, tdb) = tf_vjp(tf, f, [xin, gamma, beta], dref)
    to = nchw if spatial else (lambda a: a)
    assert_close(out, to(tout), "batchnorm forward")
    assert_close(dx, to(tdx), "batchnorm dx", rtol=1e-9)
    assert_close(dgamma, tdg, "batchnorm dgamma")
    assert_close(dbeta, tdb, "batchnorm dbeta")
    # running statistics: momentum * running + (1 - momentum) * batch, as Keras
    mean = x.mean(axis=(0, 2, 3) if spatial else 0)
    var = x.var(axis=(0, 2, 3) if spatial else 0)
    assert_close(bn_param["running_mean"], 0.9 * 0 + 0.1 * mean, "running_mean")
    assert_close(bn_param["running_var"], 0.9 * 1 + 0.1 * var, "running_var")


def test_batchnorm_running_stats_match_keras_layer(tf):
    """One training step of keras.layers.BatchNormalization updates the moving statistics
    the way convnet does (momentum convention and the *biased* batch variance)."""
    from convnet.interop import import_keras

    keras = import_keras()
    rng = np.random.default_rng(9)
    x = 1 + 2 * rng.standard_normal((6, 4))
    layer = keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-3, dtype="float64")
    layer(tf.constant(x), training=True)
    bn_param = {"mode": "train", "eps": 1e-3, "momentum": 0.8}
    L.batchnorm_forward(x, np.ones(4), np.zeros(4), bn_param)
    assert_close(bn_param["running_mean"], layer.moving_mean.numpy(), "moving_mean")
    assert_close(bn_param["running_var"], layer.moving_variance.numpy(), "moving_variance")


# ------------------------------------------------------------------------------- losses


def test_softmax_loss_matches_tf(tf):
    rng = np.random.default_rng(21)
    scores = 5 * rng.standard_normal((6, 7))
    y = rng.integers(0, 7, 6)
    loss, dscores = L.softmax_loss(scores, y)
    tloss, (tds,) = tf_vjp(
        tf,
        lambda s: tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.constant(y), logits=s)
        ),
        [scores],
        None,
    )
    assert_close(loss, tloss, "softmax_loss")
    assert_close(dscores, tds, "softmax_loss dscores")
    assert_close(L.softmax(scores), tf.nn.softmax(scores).numpy(), "softmax")


@pytest.mark.parametrize("reduction", ["mean", "sum", "batchmean"])
def test_bce_mse_match_tf(tf, reduction):
    rng = np.random.default_rng(22)
    N = 5
    logits = 3 * rng.standard_normal((N, 4, 3))
    target = rng.uniform(0, 1, logits.shape)
    red = {
        "mean": tf.reduce_mean,
        "sum": tf.reduce_sum,
        "batchmean": lambda t: tf.reduce_sum(t) / N,
    }[reduction]

    loss, dz = L.bce_with_logits_loss(logits, target, reduction=reduction)
    tloss, (tdz,) = tf_vjp(
        tf, lambda z: red(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=z)),
        [logits], None,
    )
    assert_close(loss, tloss, "bce_with_logits")
    assert_close(dz, tdz, "bce_with_logits dlogits")

    probs = rng.uniform(0.02, 0.98, logits.shape)  # inside the clip range of both libraries
    loss, dp = L.bce_loss(probs, target, reduction=reduction)
    tloss, (tdp,) = tf_vjp(
        tf,
        lambda p: red(-(target * tf.math.log(p) + (1 - target) * tf.math.log1p(-p))),
        [probs], None,
    )
    assert_close(loss, tloss, "bce (probs)")
    assert_close(dp, tdp, "bce dprobs")

    pred = rng.standard_normal(logits.shape)
    loss, dpred = L.mse_loss(pred, target, reduction=reduction)
    tloss, (tdpred,) = tf_vjp(tf, lambda p: red(tf.square(p - target)), [pred], None)
    assert_close(loss, tloss, "mse")
    assert_close(dpred, tdpred, "mse dpred")


def test_bce_float32_matches_keras_binary_crossentropy(tf):
    """float32 BCE from probabilities clips like Keras (epsilon 1e-7), saturated values too."""
    from convnet.interop import import_keras

    keras = import_keras()
    probs = np.array([[0.0, 1e-9, 0.3, 1.0], [0.999, 0.5, 1 - 1e-9, 0.01]], dtype=np.float32)
    target = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    loss, _ = L.bce_loss(probs, target)
    kloss = float(np.mean(keras.losses.binary_crossentropy(target, probs).numpy()))
    assert abs(loss - kloss) <= 1e-4 * abs(kloss)


def test_gaussian_kl_matches_tf_autodiff(tf):
    rng = np.random.default_rng(23)
    mu, logvar = rng.standard_normal((6, 3)), 0.5 * rng.standard_normal((6, 3))
    kl, dmu, dlogvar = L.gaussian_kl(mu, logvar)
    tkl, (tdmu, tdlv) = tf_vjp(
        tf,
        lambda m, lv: tf.reduce_sum(-0.5 * (1 + lv - m * m - tf.exp(lv))) / 6,
        [mu, logvar], None,
    )
    assert_close(kl, tkl, "gaussian_kl")
    assert_close(dmu, tdmu, "gaussian_kl dmu")
    assert_close(dlogvar, tdlv, "gaussian_kl dlogvar")


def test_dropout_scaling_matches_keras(tf):
    """Random masks cannot be matched, but the convention can: both are *inverted* dropout
    (kept units scaled by 1/(1-p) in training, identity at test time), and p is the drop
    probability in both."""
    from convnet.interop import import_keras

    keras = import_keras()
    rng = np.random.default_rng(8)
    x = rng.uniform(1, 2, (200, 50))  # no zeros, so zeros in the output mark dropped units
    p = 0.3
    out, cache = L.dropout_forward(x, {"p": p, "mode": "train", "seed": 1})
    kout = keras.layers.Dropout(p, seed=1, dtype="float64")(tf.constant(x), training=True)
    kout = kout.numpy()
    for name, o in (("convnet", out), ("keras", kout)):
        kept = o != 0
        assert_close(o[kept], x[kept] / (1 - p), f"{name} kept units")
        assert abs(kept.mean() - (1 - p)) < 0.02, f"{name} keep rate {kept.mean():.3f}"
    dout = rng.standard_normal(x.shape)
    dx = L.dropout_backward(dout, cache)
    assert_close(dx, np.where(out != 0, dout / (1 - p), 0.0), "dropout dx")
    test_out, _ = L.dropout_forward(x, {"p": p, "mode": "test"})
    np.testing.assert_array_equal(test_out, x)
