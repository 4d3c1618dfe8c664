"""Every notebook in ``notebooks/`` runs top to bottom (code cells in order, one namespace).

A notebook states in its metadata (``"convnet": {"slow": true, "data": [...]}``) whether it
takes over a minute and which data files it needs; slow ones run with ``pytest -m slow``.
Each runs in a fresh subprocess in a scratch folder, so its files never land in the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_data

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RUNNER = ROOT / "notebooks" / "run_notebook.py"


def _meta(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("convnet", {})


def _params():
    for nb in NOTEBOOKS:
        marks = [pytest.mark.slow] if _meta(nb).get("slow") else []
        yield pytest.param(nb, id=nb.stem, marks=marks)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", list(_params()))
def test_notebook_runs(notebook: Path, tmp_path: Path):
    for rel in _meta(notebook).get("data", []):
        need_data(rel)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, str(RUNNER), str(notebook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert res.returncode == 0, res.stderr[-4000:]


def test_runner_reports_the_failing_cell(tmp_path: Path):
    nb = {
        "cells": [
            {"cell_type": "code", "source": "x = 1\nprint(x)", "metadata": {}, "outputs": []},
            {"cell_type": "code", "source": "1 / 0", "metadata": {}, "outputs": []},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(nb))
    res = subprocess.run([sys.executable, str(RUNNER), str(path)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1
    assert "broken.ipynb cell 1 failed: ZeroDivisionError" in res.stderr


def test_runner_stores_text_and_figures(tmp_path: Path):
    src = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nprint('hi')\n6 * 7"
    nb = {"cells": [{"cell_type": "code", "source": src, "metadata": {}, "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "ok.ipynb"
    path.write_text(json.dumps(nb))
    res = subprocess.run([sys.executable, str(RUNNER), "--write", str(path)],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, MPLBACKEND="Agg"))
    assert res.returncode == 0, res.stderr
    outs = json.loads(path.read_text())["cells"][0]["outputs"]
    kinds = [o["output_type"] for o in outs]
    assert kinds == ["stream", "execute_result", "display_data"]
    assert outs[0]["text"] == "hi\n" and outs[1]["data"]["text/plain"] == "42"
    assert outs[2]["data"]["image/png"].startswith("iVBOR")  # base64 of the PNG signature
