"""Checks of the dense and element-wise layers: affine, flatten, reshape, the activations,
global average pooling, concatenation along channels, and dropout.

Most of these get the same three rows from :func:`_register_simple`: forward against a
one-line reference (``FWD_TOL``), backward against numerical gradients (``BWD_TOL``), float32
in and out (``F32_TOL``). The references avoid the layer's own formula where one is easy to
get subtly wrong: the sigmoid is checked against ``(1 + tanh(x/2)) / 2`` and tanh against
its exponential definition. ReLU and leaky ReLU are not differentiable at 0; the gradient
checker nudges inputs that land within h of it.

Dropout is random, so it is checked by what must hold for any mask:

* test mode is the identity, forward and backward;
* train mode is *inverted* dropout: every kept unit is exactly ``x / (1 - p)`` and the
  dropped fraction is within 5% (relative) of p on 20,000 units;
* with a seed in ``dropout_param`` two calls drop the same units, so the backward pass can
  be checked numerically (a forward that is not deterministic is reported as such).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convnet.checks.compare import float32_check, forward_check, grad_check, rng
from convnet.checks.registry import F32_TOL, FWD_TOL, Getter, register
from convnet.gradcheck import rel_error


def _register_simple(layer: str, fwd: str, bwd: str, make_inputs: Callable[[], dict],
                     reference: Callable[..., np.ndarray], param: Any = None,
                     f32: bool = True) -> None:
    """Forward-vs-reference, backward-vs-numerical and float32 checks of one layer."""
    extra = () if param is None else (param,)

    def fwd_case(get: Getter) -> tuple[float, str]:
        ins = make_inputs()
        return forward_check(get(fwd), (*ins.values(), *extra), reference(*ins.values()))

    def bwd_case(get: Getter) -> tuple[float, str]:
        return grad_check(get(fwd), get(bwd), make_inputs(), param)

    register(layer, "forward vs reference", (fwd,), FWD_TOL)(fwd_case)
    register(layer, "backward vs numerical", (fwd, bwd))(bwd_case)
    if f32:
        def f32_case(get: Getter) -> tuple[float, str]:
            ins = make_inputs()
            return float32_check(get(fwd), get(bwd), (*ins.values(), *extra), len(ins),
                                 reference(*ins.values()))

        register(layer, "float32 in -> float32 out", (fwd, bwd), F32_TOL)(f32_case)


def _inputs(seed: int, **shapes: tuple[int, ...]) -> Callable[[], dict[str, np.ndarray]]:
    """A maker of seeded standard-normal arrays ``{name: array of shapes[name]}``."""
    def make() -> dict[str, np.ndarray]:
        r = rng(seed)
        return {k: r.standard_normal(v) for k, v in shapes.items()}

    return make


_register_simple("affine", "affine_forward", "affine_backward",
                 _inputs(200, x=(4, 3, 2, 2), w=(12, 5), b=(5,)),
                 lambda x, w, b: x.reshape(len(x), -1) @ w + b)
_register_simple("flatten", "flatten_forward", "flatten_backward", _inputs(201, x=(3, 2, 3, 4)),
                 lambda x: x.reshape(3, 24))
_register_simple("reshape", "reshape_forward", "reshape_backward", _inputs(202, x=(3, 24)),
                 lambda x: x.reshape(3, 2, 3, 4), param=(2, 3, 4))
_register_simple("relu", "relu_forward", "relu_backward", _inputs(203, x=(4, 3, 5)),
                 lambda x: x * (x > 0))
_register_simple("leaky_relu", "leaky_relu_forward", "leaky_relu_backward",
                 _inputs(204, x=(4, 3, 5)), lambda x: np.where(x > 0, x, 0.1 * x), param=0.1)
_register_simple("sigmoid", "sigmoid_forward", "sigmoid_backward", _inputs(205, x=(4, 3, 5)),
                 lambda x: 0.5 * (1 + np.tanh(x / 2)))  # an identity, not the layer's formula
_register_simple("tanh", "tanh_forward", "tanh_backward", _inputs(206, x=(4, 3, 5)),
                 lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1))
_register_simple("global_avg_pool", "global_avg_pool_forward", "global_avg_pool_backward",
                 _inputs(207, x=(2, 3, 4, 5)), lambda x: x.sum(axis=(2, 3)) / 20)


def _concat_fwd(get: Getter) -> Callable:
    return lambda a, b, c: get("concat_forward")([a, b, c], 1)


def _concat_bwd(get: Getter) -> Callable:
    return lambda dout, cache: tuple(get("concat_backward")(dout, cache))


@register("concat", "forward vs reference", ("concat_forward",), FWD_TOL)
def _concat_forward_case(get: Getter) -> tuple[float, str]:
    ins = _inputs(208, a=(2, 1, 3, 3), b=(2, 4, 3, 3), c=(2, 2, 3, 3))()
    return forward_check(_concat_fwd(get), tuple(ins.values()),
                         np.concatenate(list(ins.values()), axis=1))


@register("concat", "backward vs numerical", ("concat_forward", "concat_backward"))
def _concat_backward_case(get: Getter) -> tuple[float, str]:
    ins = _inputs(209, a=(2, 1, 3, 3), b=(2, 4, 3, 3), c=(2, 2, 3, 3))()
    return grad_check(_concat_fwd(get), _concat_bwd(get), ins)


@register("dropout", "test mode is the identity", ("dropout_forward", "dropout_backward"),
          FWD_TOL)
def _dropout_test_case(get: Getter) -> tuple[float, str]:
    x = rng(210).standard_normal((50, 40))
    out, cache = get("dropout_forward")(x, {"p": 0.3, "mode": "test"})
    dout = rng(211).standard_normal(x.shape)
    dx = get("dropout_backward")(dout, cache)
    return max(rel_error(out, x), rel_error(dx, dout)), ""


@register("dropout", "train: drops ~p, scales kept by 1/(1-p)", ("dropout_forward",), 0.05)
def _dropout_train_case(get: Getter) -> tuple[float, str]:
    x = np.abs(rng(212).standard_normal((200, 100))) + 0.5  # no zeros of its own
    p = 0.3
    out = np.asarray(get("dropout_forward")(x, {"p": p, "mode": "train", "seed": 1})[0])
    kept = out != 0
    scale_err = rel_error(out[kept], x[kept] / (1 - p))
    if scale_err > 1e-12:
        return scale_err, "kept units are not x / (1 - p) (inverted dropout)"
    frac = 1 - kept.mean()
    return abs(frac - p) / p, f"dropped fraction {frac:.3f}, p={p}"


@register("dropout", "backward (seeded mask) vs numerical",
          ("dropout_forward", "dropout_backward"))
def _dropout_backward_case(get: Getter) -> tuple[float, str]:
    x = rng(213).standard_normal((6, 7))
    return grad_check(get("dropout_forward"), get("dropout_backward"), {"x": x},
                      {"p": 0.4, "mode": "train", "seed": 5})
