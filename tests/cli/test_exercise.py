"""``convnet exercise``: the templates (signatures, docstrings, stubs, packaging), starting
one, and grading: an untouched template scores zero with every function "not implemented",
a correct solution scores full marks, and the update-rule checks catch wrong rules."""

from __future__ import annotations

import ast
import configparser
import fnmatch
import inspect
import json
import os
from pathlib import Path

import numpy as np
import pytest

import convnet.layers as L
import convnet.optim as O
from convnet import checks
from convnet.cli import main
from convnet.exercises import EXERCISES, MARKER, exercise_of_file
from convnet.grading import function_status, score_rows

FIXTURES = Path(__file__).parents[1] / "fixtures"
REPO = Path(__file__).parents[2]
TEMPLATES = REPO / "convnet" / "exercises" / "templates"
# Options of convnet's functions that go beyond what the exercises ask for.
EXTRA_OPTIONS = {"dilation"}


def _check_json(capsys, tmp_path: Path, *argv: str) -> tuple[int, dict, str]:
    out_json = tmp_path / "result.json"
    code = main(["check", *argv, "--json", str(out_json)])
    out, _ = capsys.readouterr()
    return code, json.loads(out_json.read_text()), out


def _reference(name: str):
    return getattr(L, name, None) or getattr(O, name)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_template_signatures_docstrings_and_stubs(name):
    ex = EXERCISES[name]
    text = ex.template()
    assert text == (TEMPLATES / f"{name}.py").read_text()
    tree = ast.parse(text)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert tuple(funcs) == ex.functions
    assert exercise_of_file(TEMPLATES / f"{name}.py") == name
    for fname, node in funcs.items():
        ref = inspect.signature(_reference(fname))
        expected = [p for p in ref.parameters if p not in EXTRA_OPTIONS]
        assert [a.arg for a in node.args.args] == expected, fname
        # Same defaults as the reference, for the parameters that have one.
        defaults = [ast.literal_eval(d) for d in node.args.defaults]
        ref_defaults = [p.default for p in ref.parameters.values()
                        if p.default is not inspect.Parameter.empty and p.name in expected]
        assert defaults == ref_defaults, fname
        doc = ast.get_docstring(node)
        assert doc and "Inputs:" in doc and "Returns" in doc, fname
        # Every input is described: an "- a:" or "- a, b:" item of the Inputs section.
        inputs = doc.split("Inputs:")[1].split("Returns")[0]
        described = {n.strip() for line in inputs.splitlines() if line.startswith("- ")
                     for n in line[2:].split(":")[0].split(",")}
        assert set(expected) <= described, (fname, set(expected) - described)
        assert "shape" in doc, fname
        body = [s for s in node.body[1:]]
        assert len(body) == 1 and isinstance(body[0], ast.Raise), fname
        call = body[0].exc
        assert isinstance(call, ast.Call) and call.func.id == "NotImplementedError"
        hint = ast.literal_eval(call.args[0])
        assert hint.startswith(f"{fname}: ") and len(hint) > len(fname) + 20, fname


def test_templates_are_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    data = cfg["options.package_data"]
    patterns = [p.strip() for p in data.get("convnet.exercises", "").split(",") if p.strip()]
    for template in TEMPLATES.glob("*.py"):
        rel = template.relative_to(TEMPLATES.parent).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel
    assert sorted(p.stem for p in TEMPLATES.glob("*.py")) == sorted(EXERCISES)


def test_list_start_refuses_overwrite(capsys, tmp_path):
    assert main(["exercise", "list"]) == 0
    out, _ = capsys.readouterr()
    for name, ex in EXERCISES.items():
        assert name in out and ex.functions[0] in out

    work = tmp_path / "work"
    assert main(["exercise", "start", "fc_layers", "--dir", str(work)]) == 0
    path = work / "fc_layers.py"
    assert path.read_text() == EXERCISES["fc_layers"].template()
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would make it
    assert [p.name for p in work.iterdir()] == ["fc_layers.py"]  # no temporary left over

    path.write_text("my work")
    capsys.readouterr()
    assert main(["exercise", "start", "fc_layers", "--dir", str(work)]) == 2
    _, err = capsys.readouterr()
    assert "already exists" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert path.read_text() == "my work"
    assert main(["exercise", "start", "fc_layers", "--dir", str(work), "--overwrite"]) == 0
    assert path.read_text() == EXERCISES["fc_layers"].template()

    assert main(["exercise", "start", "no_such", "--dir", str(work)]) == 2
    _, err = capsys.readouterr()
    assert "unknown exercise 'no_such'" in err and "fc_layers" in err


@pytest.mark.parametrize("name", list(EXERCISES))
def test_untouched_template_scores_zero_all_not_implemented(name, capsys, tmp_path):
    assert main(["exercise", "start", name, "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    code, doc, out = _check_json(capsys, tmp_path, "--impl", str(tmp_path / f"{name}.py"))
    assert code == 0  # nothing failed: nothing was attempted
    ex = EXERCISES[name]
    assert doc["exercise"] == name and doc["complete"] is True
    assert [(r["layer"], r["check"]) for r in doc["results"]] == \
        [(c.layer, c.name) for c in ex.checks()]
    assert doc["counts"] == {"PASS": 0, "FAIL": 0, "NOT_IMPLEMENTED": len(ex.checks()),
                             "MISSING": 0}
    status, problems = function_status(score_rows(ex.checks(), doc, _weights(), ""), ex.functions)
    assert status == dict.fromkeys(ex.functions, "not implemented") and problems == {}
    assert "NOT_IMPLEMENTED" in out and "0 passed" in out


def _weights():
    from convnet.grading import Weights

    return Weights()


@pytest.mark.parametrize("name", list(EXERCISES))
def test_correct_solution_scores_full_marks(name, capsys, tmp_path):
    code, doc, _ = _check_json(capsys, tmp_path, "--impl",
                               str(FIXTURES / "solutions" / f"{name}.py"))
    ex = EXERCISES[name]
    bad = [r for r in doc["results"] if r["status"] != "PASS"]
    assert code == 0 and bad == []
    # Exactly the exercise's checks: nothing calling functions outside the exercise, and
    # nothing extended (dilation, pool padding) that the template does not ask for.
    assert [(r["layer"], r["check"]) for r in doc["results"]] == \
        [(c.layer, c.name) for c in ex.checks()]
    assert len(doc["results"]) >= 2 * len(ex.functions) - 2
    assert all(set(r["functions"]) <= set(ex.functions) for r in doc["results"])
    assert not any("dilation" in r["check"] for r in doc["results"])


def test_exercise_flag_restricts_a_module_without_marker(capsys, tmp_path):
    # correct_student_layers defines conv, pooling, affine and relu; asked for the
    # fully connected exercise, only affine and relu are graded, the losses are MISSING.
    code, doc, _ = _check_json(capsys, tmp_path, "--impl",
                               str(FIXTURES / "correct_student_layers.py"),
                               "--exercise", "fc_layers")
    assert code == 0 and doc["exercise"] == "fc_layers"
    layers = {r["layer"]: r["status"] for r in doc["results"]}
    assert layers == {"affine": "PASS", "relu": "PASS", "softmax_loss": "MISSING",
                      "svm_loss": "MISSING"}
    assert main(["check", "--exercise", "nope"]) == 2
    assert "unknown exercise" in capsys.readouterr().err


def test_marker_is_read_without_importing(tmp_path):
    f = tmp_path / "s.py"
    f.write_text(f'raise SystemExit("never imported")\n{MARKER} = "conv_naive"\n')
    assert exercise_of_file(f) == "conv_naive"
    f.write_text(f'{MARKER} = "not_an_exercise"\n')
    assert exercise_of_file(f) is None
    assert exercise_of_file(tmp_path / "missing.py") is None


class _Rules:
    """Update rules with classic mistakes, next to right ones."""

    @staticmethod
    def sgd(w, dw, config=None):  # in place, as the habit `w -= lr * dw` does
        config = config if config is not None else {}
        w -= config.setdefault("learning_rate", 1e-2) * dw
        return w, config

    @staticmethod
    def sgd_momentum(w, dw, config=None):  # velocity not kept between steps
        config = config if config is not None else {}
        lr, mu = config.setdefault("learning_rate", 1e-2), config.setdefault("momentum", 0.9)
        v = mu * np.zeros_like(w) - lr * dw
        return w + v, config

    @staticmethod
    def rmsprop(w, dw, config=None):
        return O.rmsprop(w, dw, config)

    @staticmethod
    def adam(w, dw, config=None):  # no bias correction
        config = config if config is not None else {}
        for k, v in (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999),
                     ("epsilon", 1e-8)):
            config.setdefault(k, v)
        m = config["beta1"] * config.get("m", 0) + (1 - config["beta1"]) * dw
        v = config["beta2"] * config.get("v", 0) + (1 - config["beta2"]) * dw ** 2
        config.update(m=m, v=v)
        return w - config["learning_rate"] * m / (np.sqrt(v) + config["epsilon"]), config


def test_update_rule_checks_catch_classic_mistakes():
    res = checks.run_checks(_Rules(), functions=EXERCISES["update_rules"].functions)
    by = {}
    for r in res:
        by.setdefault(r.layer, []).append(r)
    assert all(r.status == "PASS" for r in by["rmsprop"])
    assert all(r.status == "FAIL" for r in by["sgd"])
    assert all(r.note == "sgd mutates its input w" for r in by["sgd"])
    assert all(r.status == "FAIL" and "step 2 differs" in r.note for r in by["sgd_momentum"])
    assert all(r.status == "FAIL" and "step 1 differs" in r.note for r in by["adam"])
