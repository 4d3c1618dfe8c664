"""``compare``: a convnet model against its Keras twin, layer by layer, with gradients.

Every named layer output (both in inference mode, Keras outputs turned to NCHW and to
convnet's flatten order), the loss, the gradient w.r.t. the input and every parameter gradient
(Keras side through ``tf.GradientTape``), each as a row of a :class:`CompareReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.interop._tf import import_keras, import_tf
from convnet.interop.keras.errors import KerasConversionError
from convnet.interop.keras.keras_graph import act_name
from convnet.interop.keras.layout import flat_keras_to_convnet, nchw_to_nhwc, nhwc_to_nchw
from convnet.interop.keras.params import ParamMap, twin_maps
from convnet.interop.keras.walk import model_dtype, walk

DEFAULT_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


@dataclass
class CompareRow:
    """One compared quantity: max |a-b| and the max relative difference ``|a-b|/max|b|``."""

    kind: str  # "output", "loss", "grad"
    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    passed: bool


@dataclass
class CompareReport:
    """Result of :func:`compare`; ``print(report)`` gives a table, ``bool(report)`` = passed.

    The relative difference of arrays ``a`` (convnet) and ``b`` (Keras) is
    ``max|a - b| / max(max|b|, tiny)``: normalised by the largest magnitude, so entries that
    are tiny because of cancellation do not dominate.
    """

    dtype: str
    rtol: float
    rows: list[CompareRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    def failures(self) -> list[CompareRow]:
        return [r for r in self.rows if not r.passed]

    def to_dict(self) -> dict:
        return {
            "dtype": self.dtype, "rtol": self.rtol, "passed": self.passed,
            "rows": [r.__dict__ | {"shape": list(r.shape)} for r in self.rows],
            "skipped": list(self.skipped),
        }

    def __str__(self) -> str:
        w = max([len(r.name) for r in self.rows] + [10])
        lines = [f"convnet vs Keras ({self.dtype}, rtol {self.rtol:g})",
                 f"{'kind':<7}{'name':<{w + 2}}{'shape':<20}{'max abs':>12}{'max rel':>12}  ok"]
        for r in self.rows:
            lines.append(f"{r.kind:<7}{r.name:<{w + 2}}{str(r.shape):<20}{r.max_abs:>12.3e}"
                         f"{r.max_rel:>12.3e}  {'ok' if r.passed else 'FAIL'}")
        for s in self.skipped:
            lines.append(f"  (no counterpart: {s})")
        n_fail = len(self.failures())
        lines.append("PASSED" if self.passed else f"FAILED ({n_fail} of {len(self.rows)})")
        return "\n".join(lines)

    __repr__ = __str__


def _diff(kind: str, name: str, a: np.ndarray, b: np.ndarray, rtol: float) -> CompareRow:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return CompareRow(kind, name, a.shape, float("inf"), float("inf"), False)
    d = np.abs(a - b)
    max_abs = float(d.max()) if d.size else 0.0
    scale = float(np.abs(b).max()) if b.size else 0.0
    max_rel = max_abs / max(scale, np.finfo(np.float64).tiny)
    if max_abs == 0.0:
        max_rel = 0.0
    return CompareRow(kind, name, a.shape, max_abs, max_rel, bool(max_rel <= rtol))


@dataclass
class _Side:
    """One library's results: named outputs, loss, input gradient, parameter gradients."""

    outputs: dict[str, np.ndarray]
    loss: float
    dx: np.ndarray
    grads: dict[str, np.ndarray | None]


def _keras_output_layer(kmodel: Any, convnet_name: str, knames: set[str],
                        cnames: set[str]) -> str | None:
    """The Keras layer whose output equals convnet layer ``convnet_name``, or None."""
    if f"{convnet_name}_crop" in knames:
        return f"{convnet_name}_crop"
    if convnet_name in knames:
        act = act_name(getattr(kmodel.get_layer(convnet_name), "activation", None))
        if f"{convnet_name}_{act}" in cnames:
            return None  # Keras fuses the activation: its pre-activation output is not exposed
        return convnet_name
    # from_keras splits fused activations into '<keras name>_<activation>'
    for act in ("relu", "sigmoid", "tanh"):
        if convnet_name.endswith("_" + act) and convnet_name[: -len(act) - 1] in knames:
            return convnet_name[: -len(act) - 1]
    return None


def _output_pairs(model: Any, kmodel: Any, report: CompareReport) -> dict[str, str]:
    """convnet layer name -> Keras layer with the same output; the others go to skipped."""
    names = [layer.name for layer in model.layers]
    knames = {lyr.name for lyr in kmodel.layers}
    pairs = {}
    for n in names:
        kn = _keras_output_layer(kmodel, n, knames, set(names))
        if kn is None:
            report.skipped.append(n)
        else:
            pairs[n] = kn
    return pairs


def _trainable_maps(model: Any, kmodel: Any) -> list[ParamMap]:
    """The maps of the parameters (not buffers) that have a Keras variable."""
    try:
        maps = twin_maps(model, kmodel)
    except KerasConversionError as e:
        raise KerasConversionError(
            "compare: the Keras model is not a twin of the convnet model"
        ) from e
    return [pm for pm in maps if not pm.buffer
            and getattr(kmodel.get_layer(pm.keras_layer), pm.attr, None) is not None]


def _convnet_side(model: Any, x: np.ndarray, y: np.ndarray | None,
                  seed: int) -> tuple[_Side, np.ndarray | None]:
    """Forward to every layer in inference mode, loss (+ L2 on weights), backward; also the
    random projection ``g`` of the scores that is the loss when there are no labels."""
    from convnet.layers import softmax_loss

    names = [layer.name for layer in model.layers]
    acts = model.forward_layers(x, names, train=False)
    scores = acts[names[-1]]
    g = None
    if y is not None:
        loss, dscores = softmax_loss(scores, y)
    else:
        g = np.random.default_rng(seed).standard_normal(scores.shape).astype(x.dtype)
        loss, dscores = float(np.sum(scores * g)), g
    dx = model.backward(dscores)
    reg = float(getattr(model, "reg", 0.0) or 0.0)
    grads = {k: np.array(v, copy=True) for k, v in model.grads.items()}
    for k in grads:
        if k == "W" or k.endswith("/W"):
            w = np.asarray(model.params[k])
            grads[k] = grads[k] + reg * w
            loss = loss + 0.5 * reg * float(np.sum(w**2))
    return _Side(acts, loss, dx, grads), g


def _keras_side(kmodel: Any, pairs: dict[str, str], maps: list[ParamMap], x: np.ndarray,
                y: np.ndarray | None, g: np.ndarray, reg: float, probs_out: bool) -> _Side:
    """The same on the Keras model, gradients by ``tf.GradientTape``; arrays in Keras layout."""
    tf, keras = import_tf(), import_keras()
    outs = [kmodel.get_layer(kn).output for kn in pairs.values()]
    probe = keras.Model(kmodel.inputs, outs + [kmodel.outputs[0]])
    xk = tf.constant(nchw_to_nhwc(x))
    variables = [getattr(kmodel.get_layer(pm.keras_layer), pm.attr) for pm in maps]
    with tf.GradientTape() as tape:
        tape.watch(xk)
        res = probe(xk, training=False)
        final = res[-1]
        if y is not None:
            yt = tf.constant(y.astype(np.int64))
            if probs_out:
                ce = keras.losses.sparse_categorical_crossentropy(yt, final, from_logits=False)
            else:
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yt, logits=final)
            kloss = tf.reduce_mean(ce)
        else:
            kloss = tf.reduce_sum(final * tf.constant(nchw_to_nhwc(g)))
        for pm, v in zip(maps, variables, strict=True):
            if pm.attr == "kernel" and reg:
                kloss = kloss + 0.5 * reg * tf.reduce_sum(v * v)
    kgrads = tape.gradient(kloss, [xk] + variables)
    outputs = {n: np.asarray(r.numpy()) for n, r in zip(pairs, res[:-1], strict=True)}
    grads = {pm.key: None if kg is None else kg.numpy()
             for pm, kg in zip(maps, kgrads[1:], strict=True)}
    return _Side(outputs, float(kloss.numpy()), kgrads[0].numpy(), grads)


def _check_inputs(model: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"compare: x must be a floating array (N, ...), got {x.dtype}")
    dt = model_dtype(model)  # both models compute in the convnet model's dtype
    if dt not in DEFAULT_RTOL:
        raise ValueError(f"compare: the model must be float32 or float64, got {dt}")
    if y is not None and getattr(model, "loss_name", "softmax") != "softmax":
        raise ValueError(
            f"compare: labels y need a loss='softmax' model, {model.name!r} has loss "
            f"{model.loss_name!r}; pass y=None to compare through a random projection"
        )
    return x.astype(dt, copy=False), None if y is None else np.asarray(y)


def _add_rows(report: CompareReport, model: Any, ours: _Side, theirs: _Side,
              maps: list[ParamMap], softmax_at: str | None) -> None:
    """One row per output, the loss, the input gradient and each parameter gradient;
    ``softmax_at``: the convnet layer whose Keras twin ends in a fused softmax."""
    from convnet.layers import softmax

    flat_chw = {s.name: s.out_chw for s in walk(model) if s.out_chw is not None}
    for n, a in theirs.outputs.items():
        a = nhwc_to_nchw(a)
        if n in flat_chw and a.ndim == 2:
            a = flat_keras_to_convnet(a, flat_chw[n])
        # convnet keeps that softmax in its loss
        mine = softmax(ours.outputs[n]) if n == softmax_at else ours.outputs[n]
        report.rows.append(_diff("output", n, mine, a, report.rtol))
    report.rows.append(_diff("loss", "loss", np.array(ours.loss), np.array(theirs.loss),
                             report.rtol))
    dx = ours.dx
    report.rows.append(_diff("grad", "input", dx, nhwc_to_nchw(theirs.dx).reshape(dx.shape),
                             report.rtol))
    for pm in maps:
        kg = theirs.grads[pm.key]
        if kg is None or pm.key not in ours.grads:
            report.skipped.append(f"grad {pm.key}")
            continue
        report.rows.append(_diff("grad", pm.key, ours.grads[pm.key], pm.from_keras(kg),
                                 report.rtol))


def compare(model: Any, keras_model: Any, x: np.ndarray, y: np.ndarray | None = None,
            rtol: float | None = None, seed: int = 0) -> CompareReport:
    """Compare a convnet model with its Keras twin: outputs, loss and all gradients.

    Inputs:
    - model: convnet ``Sequential``.
    - keras_model: its Keras twin (``to_keras``, or the model ``from_keras`` read).
    - x: input, NCHW ``(N, C, H, W)`` (or ``(N, D)``); cast to the convnet model's dtype
      (float32 or float64), which is also the dtype compared in.
    - y: integer labels ``(N,)``: the loss is softmax cross-entropy of the scores (on the
      Keras side from its logits, or from its probabilities if it ends in a softmax) plus
      convnet's ``0.5 * reg * sum(W**2)``. If None, the scalar compared is
      ``sum(scores * g)`` for a fixed random ``g`` (seeded by ``seed``).
    - rtol: tolerance on the relative difference (default 1e-4 for float32 and 1e-10 for
      float64).

    Caveat (float32): a max-pool window whose two largest values differ by less than the
    rounding error (common on MNIST, whose zero background gives exactly tied windows) may
    pick a different maximum in the two libraries, so the *input* gradient can differ at
    those pixels although the conversion is exact. Check in float64 for a strict verdict.

    Returns:
    - a :class:`CompareReport`: one row per named layer output (both in inference mode, Keras
      outputs converted to NCHW / convnet flatten order), the loss, the gradient w.r.t. the
      input and every parameter gradient (Keras side via ``tf.GradientTape``).
    """
    import_tf()
    x, y = _check_inputs(model, x, y)
    rtol = DEFAULT_RTOL[x.dtype] if rtol is None else rtol
    report = CompareReport(dtype=x.dtype.name, rtol=float(rtol))
    pairs = _output_pairs(model, keras_model, report)
    maps = _trainable_maps(model, keras_model)
    ours, g = _convnet_side(model, x, y, seed)
    last_k = keras_model.layers[-1]
    probs_out = act_name(getattr(last_k, "activation", None)) == "softmax"
    reg = float(getattr(model, "reg", 0.0) or 0.0)
    theirs = _keras_side(keras_model, pairs, maps, x, y, g, reg, probs_out)
    softmax_at = next((n for n, kn in pairs.items() if kn == last_k.name), None)
    _add_rows(report, model, ours, theirs, maps, softmax_at if probs_out else None)
    return report


__all__ = ["DEFAULT_RTOL", "CompareReport", "CompareRow", "compare"]
