"""Every ```python block and every ``convnet ...`` command of README.md runs as written.

How README blocks are run (write new ones to fit):

* A ```python block runs as a script in a fresh subprocess, in an empty temporary folder that
  also shows the checkout's top-level files and folders (``tests/``, ``experiments/``, ...),
  as a shell in a fresh clone's root would; it must exit with status 0.
* In a ```bash block with ``convnet`` commands, those run in order (``convnet`` is
  ``python -m convnet.cli`` of this checkout); ``export``/``cd`` lines are kept, anything else
  (``pip install``, ``pytest``) is left out. Each must exit with status 0. Paths to data
  are written ``$CONVNET_DATA_DIR/...`` so that they hold from any folder.
* An HTML comment on the line(s) just before the opening fence marks the block:
  ``<!-- slow -->`` (over ~20 s: runs under ``pytest -m slow``), ``<!-- continue -->`` (runs
  after the previous block of the same language, e.g. a snippet using the variables of the
  one before), ``<!-- skip -->`` (never run: output samples, file layouts). Words combine:
  ``<!-- slow continue -->``. A continued block is slow when the one it continues is.
* Blocks that load data (``load_mnist``, ``$CONVNET_DATA_DIR``, every ``convnet`` command
  but ``check``) are skipped when ``CONVNET_DATA_DIR`` is not set (failed under
  ``CONVNET_REQUIRE_DATA=1``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FAST_TIMEOUT = 300  # seconds; generous because the test machine may be shared
SLOW_TIMEOUT = 3600
KEPT_SHELL = ("convnet", "export", "cd")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    marks: set[str] = field(default_factory=set)
    before: list[Block] = field(default_factory=list)  # blocks it continues, in order

    @property
    def slow(self) -> bool:
        return "slow" in self.marks or any("slow" in b.marks for b in self.before)

    def script(self) -> str:
        parts = [*self.before, self]
        if self.lang == "python":
            return "\n\n".join(b.code for b in parts)
        return "\n".join(shell_commands(b.code) for b in parts)


def _marks(lines: list[str], fence: int) -> set[str]:
    """Words of the HTML comment(s) right above line index ``fence`` (blank lines allowed)."""
    marks: set[str] = set()
    i = fence - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    while i >= 0 and (m := re.fullmatch(r"\s*<!--(.*)-->\s*", lines[i])):
        marks.update(re.split(r"[\s,]+", m.group(1).strip()))
        i -= 1
    return marks - {""}


def readme_blocks(text: str) -> list[Block]:
    """The ```python and ```bash blocks of ``text`` with their marks and continuations."""
    lines = text.splitlines()
    blocks: list[Block] = []
    last: dict[str, Block] = {}
    i = 0
    while i < len(lines):
        m = re.fullmatch(r"\s*```\s*([\w+-]*)\s*", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1).lower()
        i += 1
        while i < len(lines) and not re.fullmatch(r"\s*```\s*", lines[i]):
            i += 1
        if lang in ("python", "py", "bash", "sh", "shell", "console"):
            lang = "python" if lang in ("python", "py") else "bash"
            block = Block(lang, "\n".join(lines[start + 1:i]) + "\n", start + 1,
                          _marks(lines, start))
            if "continue" in block.marks and lang in last:
                block.before = [*last[lang].before, last[lang]]
            blocks.append(block)
            last[lang] = block
        i += 1
    return blocks


def shell_commands(code: str) -> str:
    """The lines (and ``&&`` parts) of a shell block that the test runs, one per line."""
    kept = []
    for line in code.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            part = part.strip()
            if part.split(" ", 1)[0] in KEPT_SHELL:
                kept.append(part)
    return "\n".join(kept)


def _needs_data(block: Block) -> bool:
    code = block.script()
    if block.lang == "bash":
        commands = [c for c in code.splitlines() if c.startswith("convnet ")]
        return "CONVNET_DATA_DIR" in code or any(not c.startswith("convnet check")
                                                 for c in commands)
    return bool(re.search(r"CONVNET_DATA_DIR|load_mnist|load_cifar10|SqueezeNet|squeezenet",
                          code))


def _runnable(block: Block) -> bool:
    if "skip" in block.marks:
        return False
    return block.lang == "python" or any(
        c.startswith("convnet ") for c in shell_commands(block.code).splitlines())


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if _runnable(b)]


def _workspace(tmp_path: Path) -> Path:
    """An empty folder showing the checkout's top-level entries (through symbolic links)."""
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name in ("runs", "build", "dist"):
            continue
        (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def _run(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    timeout = SLOW_TIMEOUT if block.slow else FAST_TIMEOUT
    if block.lang == "python":
        script = cwd / "readme_snippet.py"
        script.write_text(block.script(), encoding="utf-8")
        cmd = [sys.executable, str(script)]
    else:
        prelude = f'set -e\nconvnet() {{ {shlex.quote(sys.executable)} -m convnet.cli "$@"; }}\n'
        cmd = ["bash", "-c", prelude + block.script()]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=f"{b.lang}-line{b.line}", marks=[pytest.mark.slow] if b.slow else [])
     for b in BLOCKS],
)
def test_readme_block_runs_as_written(block, tmp_path):
    if _needs_data(block) and not os.environ.get("CONVNET_DATA_DIR"):
        if os.environ.get("CONVNET_REQUIRE_DATA") == "1":
            pytest.fail(f"README block at line {block.line} needs CONVNET_DATA_DIR")
        pytest.skip(f"README block at line {block.line} needs data: set CONVNET_DATA_DIR")
    result = _run(block, _workspace(tmp_path))
    assert result.returncode == 0, (
        f"README.md block at line {block.line} failed (exit {result.returncode}):\n"
        f"{block.script()}\n--- stdout ---\n{result.stdout[-3000:]}\n"
        f"--- stderr ---\n{result.stderr[-3000:]}"
    )


def test_the_block_parser():
    text = "\n".join([
        "intro", "```python", "a = 1", "```", "", "<!-- continue -->", "```python",
        "print(a)", "```", "<!-- slow -->", "", "```bash",
        "pip install -e . && convnet train mnist \\", "  --epochs 1   # comment",
        "pytest", "```", "<!-- skip -->", "```python", "not python", "```",
        "<!-- slow -->", "```python", "b = 2", "```", "<!-- continue -->", "```python",
        "print(b)", "```", "```", "layout", "```",
    ])
    blocks = readme_blocks(text)
    assert [(b.lang, b.line) for b in blocks] == [("python", 2), ("python", 7), ("bash", 12),
                                                  ("python", 18), ("python", 22),
                                                  ("python", 26)]
    first, cont, bash, skipped, slow, slow_cont = blocks
    assert cont.script() == "a = 1\n\n\nprint(a)\n" and not cont.slow
    assert bash.slow and bash.script() == "convnet train mnist    --epochs 1   # comment"
    assert not _runnable(skipped) and slow.slow and slow_cont.slow
    assert _needs_data(bash) and not _needs_data(first)
