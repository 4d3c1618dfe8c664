"""The check registry as a package: the table's order, the public names, and the
normalisation checks (they pass on convnet's layers and fail the classic mistakes)."""

from __future__ import annotations

import types

import numpy as np
import pytest

import convnet.layers as L
from convnet import checks
from convnet.checks import registry

# The rows of ``convnet check``, layer by layer, in table order (a layer appears once, at
# its first row). The normalisation layers after spatial_batchnorm and relu_max_pool are the
# only additions since the registry was split into families; the rest is in its old order.
LAYER_ORDER = [
    "conv_naive", "conv_im2col", "conv_numba", "conv (dispatch)", "conv_winograd",
    "im2col/col2im", "conv_transpose",
    "max_pool_naive", "max_pool_im2col", "max_pool_numba", "max_pool (dispatch)",
    "relu_max_pool", "avg_pool",
    "affine", "flatten", "reshape", "relu", "leaky_relu", "sigmoid", "tanh", "global_avg_pool",
    "concat", "dropout",
    "batchnorm", "spatial_batchnorm", "batchnorm_staged", "layernorm", "spatial_groupnorm",
    "softmax_loss", "svm_loss", "mse_loss", "bce_loss", "bce_with_logits_loss", "gaussian_kl",
    "softmax",
    "sgd", "sgd_momentum", "rmsprop", "adam",
]
# Checks per family: 175 before the normalisation layers were added, 14 of them new; then 11
# for the fused ReLU + max pooling layer.
FAMILY_COUNTS = {"conv": 51, "pooling": 68, "dense": 29, "normalization": 24, "losses": 20,
                 "update_rules": 8}

# Every public name of the single-module registry, which ``checks.X`` must still reach.
OLD_PUBLIC = [
    "ADJ_TOL", "ALL_FUNCTION_NAMES", "BWD_TOL", "CONV_BACKENDS", "CONV_FWD_CASES", "Check",
    "CheckResult", "F32_TOL", "FAIL", "FWD_TOL", "Getter", "InputMutatedError", "MISSING",
    "NOT_IMPLEMENTED", "NothingToCheckError", "PASS", "POOL_BACKENDS", "POOL_FWD_CASES",
    "REGISTRY", "STATUSES", "UPDATE_RULE_CASES", "default_impl", "defined_functions",
    "guard_inputs", "load_student_module", "ref_avg_pool", "ref_conv", "ref_conv_transpose",
    "ref_max_pool", "ref_max_pool_backward", "register", "run_check", "run_checks",
    "select_checks", "stub_functions",
]


def _family(check: checks.Check) -> str:
    return check.fn.__module__.rsplit(".", 1)[-1]


def test_families_are_contiguous_and_in_documented_order():
    seen = [_family(c) for c in checks.REGISTRY]
    runs = list(dict.fromkeys(seen))
    assert runs == list(checks.FAMILIES)
    # Contiguous: the family changes exactly len(FAMILIES) - 1 times along the table.
    assert sum(a != b for a, b in zip(seen, seen[1:], strict=False)) == len(runs) - 1
    assert {f: seen.count(f) for f in runs} == FAMILY_COUNTS
    assert len(checks.REGISTRY) == sum(FAMILY_COUNTS.values()) == 200


def test_layer_order_of_the_table():
    assert list(dict.fromkeys(c.layer for c in checks.REGISTRY)) == LAYER_ORDER
    rows = [(c.layer, c.name) for c in checks.REGISTRY]
    assert len(set(rows)) == len(rows), "two rows with the same layer and check name"


def test_old_public_names_still_reachable():
    missing = [n for n in OLD_PUBLIC if not hasattr(checks, n)]
    assert missing == []
    assert set(OLD_PUBLIC) <= set(checks.__all__)
    # One registry, one decorator: a check registered through the package lands in the table.
    assert checks.REGISTRY is registry.REGISTRY and checks.register is registry.register


def test_every_exported_layer_function_is_checked():
    public = {n for n in L.__all__ if callable(getattr(L, n)) and not n.startswith("set_")}
    assert public - set(checks.ALL_FUNCTION_NAMES) == set()
    assert {"layernorm_forward", "layernorm_backward", "spatial_groupnorm_forward",
            "spatial_groupnorm_backward", "batchnorm_backward_staged"} <= set(
        checks.ALL_FUNCTION_NAMES)


NORM_ONLY = "batchnorm_staged,layernorm,spatial_groupnorm"


def _status(impl, only: str = NORM_ONLY) -> dict[tuple[str, str], str]:
    return {(r.layer, r.check): r.status for r in checks.run_checks(impl, only=only,
                                                                     extended=True)}


def _layers(**overrides) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{**{n: getattr(L, n) for n in L.__all__}, **overrides})


def test_normalisation_checks_pass_on_convnet_layers():
    status = _status(None)
    assert len(status) == 14
    assert set(status.values()) == {"PASS"}, status


def test_layernorm_over_the_batch_axis_fails_forward_checks():
    def layernorm_forward(x, gamma, beta, ln_param):
        # The classic slip: batch-norm statistics (axis 0) instead of per-sample ones.
        xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
        return gamma * xhat + beta, (xhat, gamma)

    status = _status(_layers(layernorm_forward=layernorm_forward), only="layernorm")
    assert status[("layernorm", "forward vs reference")] == "FAIL"
    assert status[("layernorm", "one sample alone = its row in the batch")] == "FAIL"


def test_groupnorm_with_interleaved_groups_fails_only_where_grouping_matters():
    def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
        # Groups of every G-th channel instead of C/G consecutive ones: the same for G = 1
        # (one group) and G = C (one channel per group), wrong in between.
        N, C, H, W = x.shape
        xg = x.reshape(N, C // G, G, H, W)
        mu = xg.mean(axis=(1, 3, 4), keepdims=True)
        var = xg.var(axis=(1, 3, 4), keepdims=True)
        xhat = ((xg - mu) / np.sqrt(var + 1e-5)).reshape(x.shape)
        return gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1), None

    status = _status(_layers(spatial_groupnorm_forward=spatial_groupnorm_forward),
                     only="spatial_groupnorm: forward")
    assert status == {
        ("spatial_groupnorm", "forward G=1 (layer norm) vs reference"): "PASS",
        ("spatial_groupnorm", "forward G=2 vs reference"): "FAIL",
        ("spatial_groupnorm", "forward G=C=4 (instance norm) vs reference"): "PASS",
    }


def test_staged_backward_without_the_variance_path_fails():
    def batchnorm_backward_staged(dout, cache):
        # Forgets that the variance depends on x: only the mean path is kept.
        mode, xhat, gamma, inv_std = cache
        dxc = dout * gamma * inv_std
        dx = dxc if mode == "test" else dxc - dxc.mean(axis=0)
        return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)

    status = _status(_layers(batchnorm_backward_staged=batchnorm_backward_staged),
                     only="batchnorm_staged")
    assert status[("batchnorm_staged", "= batchnorm_backward (train and test modes)")] == "FAIL"
    assert status[("batchnorm_staged", "backward (train) vs numerical")] == "FAIL"
    # In test mode the statistics are constants: the variance path does not exist.
    assert status[("batchnorm_staged", "backward (test) vs numerical")] == "PASS"


@pytest.mark.parametrize("G", [1, 2, 4])
def test_groupnorm_reference_is_layer_and_instance_norm_at_the_ends(G):
    r = np.random.default_rng(0)
    x, g, b = r.standard_normal((2, 4, 3, 3)), r.standard_normal(4), r.standard_normal(4)
    out = checks.ref_groupnorm(x, g, b, G)
    # Each (sample, group) of the normalised output has mean 0 and variance 1 (up to eps).
    xhat = ((out - b.reshape(1, 4, 1, 1)) / g.reshape(1, 4, 1, 1)).reshape(2, G, -1)
    np.testing.assert_allclose(xhat.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(xhat.var(axis=-1), 1, atol=1e-3)
    if G == 1:
        flat = checks.ref_layernorm(x.reshape(2, -1), np.ones(36), np.zeros(36)).reshape(x.shape)
        np.testing.assert_allclose(out, g.reshape(1, 4, 1, 1) * flat + b.reshape(1, 4, 1, 1),
                                   rtol=1e-12, atol=1e-12)
