"""Guards on the package's shape: no import cycles between subpackages, models independent of
the code that consumes them, and a complexity ceiling (enforced by ``ruff.toml``).

The import graph is read statically from the source (every ``import``/``from`` statement,
function-local ones included), so a cycle hidden behind a lazy import is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import convnet

PACKAGE = Path(convnet.__file__).parent


def _unit(module: str) -> str | None:
    """The subpackage (or top-level module) a ``convnet.*`` module belongs to."""
    parts = module.split(".")
    if parts[0] != "convnet" or len(parts) < 2:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``convnet.*`` module named by an import statement in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from convnet import models`` names the subpackage in the alias.
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("convnet.")}


def import_graph() -> dict[str, set[str]]:
    """Edges between units: ``graph[a]`` is the set of units that ``a`` imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _unit(_module_name(path))
        if src is None:
            continue
        for target in _imports(path):
            dst = _unit(target)
            if dst is not None and dst != src and (PACKAGE / dst).exists() | (
                PACKAGE / f"{dst}.py"
            ).exists():
                graph.setdefault(src, set()).add(dst)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_subpackages():
    graph = import_graph()
    assert "models" in graph and "inputgrad" in graph  # the graph was really read
    cycles = find_cycles(graph)
    detail = {
        " <-> ".join(c): {u: sorted(graph[u] & set(c)) for u in c} for c in cycles
    }
    assert not cycles, f"import cycles between convnet subpackages: {detail}"


def test_models_do_not_depend_on_their_consumers():
    code = (
        "import sys, convnet.models, convnet.models.squeezenet, convnet.models.autoencoder\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('convnet.inputgrad', "
        "'convnet.interop', 'convnet.commands', 'tensorflow')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", f"import convnet.models loaded {out.stdout.strip()}"
    graph = import_graph()
    assert not graph.get("models", set()) & {"inputgrad", "interop", "commands", "cli"}


def test_commands_never_import_each_other():
    """Shared command code lives in commands/_common.py and _model.py, or in the library."""
    offenders = {}
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        siblings = {
            m for m in _imports(path)
            if m.startswith("convnet.commands.") and not m.split(".")[2].startswith("_")
        }
        if siblings:
            offenders[path.name] = sorted(siblings)
    assert not offenders, f"commands importing other commands: {offenders}"
