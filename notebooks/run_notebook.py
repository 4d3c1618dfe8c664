"""Run a Jupyter notebook's code cells top to bottom without a Jupyter kernel.

Used by the test suite (so that no notebook rots) and to store a notebook's outputs::

    python notebooks/run_notebook.py notebooks/01_layers_and_gradient_checks.ipynb
    python notebooks/run_notebook.py --write notebooks/*.ipynb    # store outputs and figures

Cells run in order in one namespace, as a kernel would run them. What a cell prints and the
value of its last expression become its text output; every matplotlib figure open at the end
of a cell becomes a PNG output (and is closed). A cell that raises stops the run with the
cell's number and source line. The notebooks use plain Python only (no ``%`` magics), so
this small runner is enough and the project needs no Jupyter dependency.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _run_cell(src: str, ns: dict[str, Any], label: str) -> tuple[str, Any]:
    """Execute one cell; returns (printed text, value of a trailing expression or None)."""
    tree = ast.parse(src, filename=label)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, label, "exec"), ns)  # noqa: S102 - running the notebook is the point
        value = eval(compile(last, label, "eval"), ns) if last is not None else None  # noqa: S307
    return out.getvalue(), value


def _figures_as_png() -> list[str]:
    if "matplotlib.pyplot" not in sys.modules:
        return []
    import matplotlib.pyplot as plt

    pngs = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png", dpi=72, bbox_inches="tight")
        pngs.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    plt.close("all")
    return pngs


def _outputs(text: str, value: Any, pngs: list[str], count: int) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    if text:
        outputs.append({"output_type": "stream", "name": "stdout", "text": text})
    if value is not None:
        outputs.append({"output_type": "execute_result", "execution_count": count,
                        "data": {"text/plain": repr(value)}, "metadata": {}})
    outputs.extend({"output_type": "display_data", "data": {"image/png": p, "text/plain":
                    "<Figure>"}, "metadata": {}} for p in pngs)
    return outputs


def run_notebook(path: str | os.PathLike, write: bool = False, quiet: bool = False) -> float:
    """Execute every code cell of the notebook at ``path``; returns the wall time in seconds.

    With ``write=True`` the outputs are stored in the notebook (written atomically).
    Raises ``RuntimeError`` naming the cell when a cell fails.
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    ns: dict[str, Any] = {"__name__": "__main__"}
    started = time.perf_counter()
    count = 0
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        count += 1
        label = f"{path.name} cell {i}"
        t0 = time.perf_counter()
        try:
            text, value = _run_cell(_source(cell), ns, label)
        except Exception as exc:
            tb = traceback.format_exc(limit=-3)
            raise RuntimeError(f"{label} failed: {type(exc).__name__}: {exc}\n{tb}") from exc
        if not quiet:
            print(f"  {label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        cell["outputs"] = _outputs(text, value, _figures_as_png(), count)
        cell["execution_count"] = count
    elapsed = time.perf_counter() - started
    if write:
        from convnet._io import atomic_write_text

        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--write", action="store_true", help="store outputs in the notebooks")
    args = p.parse_args(argv)
    for nb in args.notebooks:
        print(f"{nb}:", file=sys.stderr)
        try:
            elapsed = run_notebook(nb, write=args.write)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{nb}: ok in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
